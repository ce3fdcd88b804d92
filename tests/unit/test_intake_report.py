"""``cw publish``'s report says what happened to each event, once: new, held already (by
``CW_EVENTS`` within its duplicate window, or by the read model after it), or a conflict
(its event_id held with other content); and when the read model cannot be asked, it says
what "new" cannot know.

With fakes of the two ports: the sink (``CW_EVENTS`` and its duplicate window) and the read
model's archive.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import timedelta

import orjson
import pytest

from contracts import encode_event
from services.intake.domain.lines import Accepted, Conflict, Line, Rejected
from services.intake.domain.ports import (
    ArchiveUnavailable,
    IntakeSink,
    OnAck,
    ReadModelArchive,
)
from services.intake.entrypoints.cli import conflict_line, summary
from services.intake.service import publish_lines
from tests import factories as f

pytestmark = pytest.mark.unit

WINDOW = timedelta(minutes=5)


class FakeStream(IntakeSink):
    """``CW_EVENTS`` with a duplicate window: an event_id seen ``recently`` is a duplicate."""

    def __init__(self, recently: set[uuid.UUID] | None = None) -> None:
        self.recently = set(recently or ())
        self.stored: list[bytes] = []
        self.dead_letters: list[int] = []

    async def publish(self, accepted: Accepted, on_ack: OnAck) -> None:
        duplicate = accepted.event.event_id in self.recently
        if not duplicate:
            self.recently.add(accepted.event.event_id)
            self.stored.append(accepted.payload)
        on_ack(duplicate)

    async def dead_letter(self, rejected: Rejected, on_ack: OnAck) -> None:
        self.dead_letters.append(rejected.line)
        on_ack(False)

    async def drain(self) -> None:
        pass


class FakeArchive(ReadModelArchive):
    """The read model's archive: payloads by event_id; ``away`` when it cannot be asked."""

    def __init__(
        self, payloads: Mapping[uuid.UUID, bytes] | None = None, *, away: str = ""
    ) -> None:
        self.payloads = dict(payloads or {})
        self.away = away
        self.asked: list[int] = []
        self.asking = self.most_at_once = 0

    async def held(self, event_ids: Sequence[uuid.UUID]) -> Mapping[uuid.UUID, bytes]:
        if self.away:
            raise ArchiveUnavailable(self.away)
        self.asked.append(len(event_ids))
        self.asking += 1
        self.most_at_once = max(self.most_at_once, self.asking)
        await asyncio.sleep(0)  # a real answer takes a while: let the publishing go on
        self.asking -= 1
        return {i: self.payloads[i] for i in event_ids if i in self.payloads}


def _events(n: int) -> list[bytes]:
    return [
        encode_event(f.inspection(f"LY-FM-{i:03d}", f.at("2023-03-15 10:00"))) for i in range(n)
    ]


def _id(payload: bytes) -> uuid.UUID:
    return uuid.UUID(orjson.loads(payload)["event_id"])


async def _lines(payloads: Sequence[bytes]) -> AsyncIterator[list[Line]]:
    yield [Line(i + 1, p, len(p)) for i, p in enumerate(payloads)]


async def _report(
    payloads: Sequence[bytes], stream: FakeStream, archive: ReadModelArchive | None
) -> list[str]:
    report = await publish_lines(_lines(payloads), stream, archive=archive)
    assert report.exit_code == (1 if report.rejected or report.conflicts else 0)
    return summary(report, WINDOW)


async def test_new_events_are_new() -> None:
    events = _events(3)
    archive = FakeArchive()
    said = await _report(events, FakeStream(), archive)
    assert said == ["3 events sent: 3 new, 0 already held; 0 lines rejected"]
    assert archive.asked == [3]  # one question per batch


async def test_events_sent_again_within_the_window_are_held_by_the_stream() -> None:
    events = _events(2)
    stream = FakeStream({_id(e) for e in events})
    said = await _report(events, stream, FakeArchive({_id(e): e for e in events}))
    assert said == [
        "2 events sent: 0 new, 2 already held; 0 lines rejected",
        "  2 already in CW_EVENTS: sent again within its 5m duplicate window, so NATS stored "
        "no second copy",
    ]
    assert stream.stored == []


async def test_events_sent_again_after_the_window_are_held_by_the_read_model() -> None:
    events = _events(157)
    stream = FakeStream()  # the window has passed: the stream stores them again
    said = await _report(events, stream, FakeArchive({_id(e): e for e in events}))
    assert said == [
        "157 events sent: 0 new, 157 already held; 0 lines rejected",
        "  157 already in the read model: sent again after CW_EVENTS's 5m duplicate window, "
        "so stored there again; the projector skips them by event_id, nothing is doubled",
    ]
    assert len(stream.stored) == 157


async def test_the_same_event_written_differently_is_still_the_same() -> None:
    [event] = _events(1)
    rewritten = orjson.dumps(orjson.loads(event), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    assert rewritten != event
    said = await _report([event], FakeStream(), FakeArchive({_id(event): rewritten}))
    assert said[0] == "1 event sent: 0 new, 1 already held; 0 lines rejected"


async def test_an_event_id_held_with_other_content_is_a_conflict() -> None:
    [event, other] = _events(2)
    conflicts: list[Conflict] = []
    report = await publish_lines(
        _lines([event, _events(3)[2]]),
        FakeStream(),
        archive=FakeArchive({_id(event): other}),
        on_conflict=conflicts.append,
    )
    assert summary(report, WINDOW) == [
        "2 events sent: 1 new, 0 already held, 1 conflict; 0 lines rejected",
        "  1 conflict: an event_id the read model holds with other content (listed above): "
        "NATS drops such an event within its duplicate window, the projector dead-letters it "
        "after (cw dlq list --stage projector); a changed event needs a new event_id",
    ]
    assert conflicts == [Conflict(1, str(_id(event)), dropped=False)]
    assert conflict_line(conflicts[0]) == (
        f"line 1: conflict: event_id {_id(event)} is held by the read model with other "
        "content; the projector dead-letters this one as event_id_reused"
    )
    assert report.exit_code == 1


async def test_a_conflict_within_the_window_is_not_already_held() -> None:
    """NATS drops the second payload as a duplicate: the archive tells it was another event."""
    [event, other] = _events(2)
    conflicts: list[Conflict] = []
    report = await publish_lines(
        _lines([event]),
        FakeStream({_id(event)}),
        archive=FakeArchive({_id(event): other}),
        on_conflict=conflicts.append,
    )
    assert (report.duplicate, report.conflicts, report.exit_code) == (0, 1, 1)
    assert summary(report, WINDOW)[0] == (
        "1 event sent: 0 new, 0 already held, 1 conflict; 0 lines rejected"
    )
    assert conflicts == [Conflict(1, str(_id(event)), dropped=True)]
    assert "took this one for a duplicate and kept the first" in conflict_line(conflicts[0])


async def test_without_the_read_model_events_are_published_and_new_is_explained() -> None:
    events = _events(4)
    stream = FakeStream()
    said = await _report(events, stream, FakeArchive(away="cannot reach PostgreSQL at X"))
    assert said == [
        "4 events sent: 4 new, 0 already held; 0 lines rejected",
        "  note: the read model was not asked (cannot reach PostgreSQL at X), so new means not "
        "seen within CW_EVENTS's 5m duplicate window; an event sent before that is only "
        "recognised by the projector, which skips it by event_id",
    ]
    assert len(stream.stored) == 4


async def test_no_note_when_nothing_was_counted_new() -> None:
    events = _events(2)
    said = await _report(events, FakeStream({_id(e) for e in events}), None)
    assert len(said) == 2 and "note" not in "\n".join(said)


async def test_rejected_and_blank_lines_are_counted_as_lines() -> None:
    [event] = _events(1)
    said = await _report([event, b"", b"{not json"], FakeStream(), FakeArchive())
    assert said[0] == "1 event sent: 1 new, 0 already held; 1 line rejected (1 blank line skipped)"


async def test_every_batch_is_asked_about_once_and_one_at_a_time() -> None:
    events = _events(10)
    archive = FakeArchive({_id(e): e for e in events[3:5]})

    async def batches() -> AsyncIterator[list[Line]]:
        for start in range(0, 10, 4):
            yield [Line(i + 1, events[i], len(events[i])) for i in range(start, min(start + 4, 10))]

    report = await publish_lines(batches(), FakeStream(), archive=archive)

    assert archive.asked == [4, 4, 2]
    assert archive.most_at_once == 1  # one connection: never two questions on it at once
    assert (report.sent, report.new, report.already_projected) == (10, 8, 2)
    assert report.lines_read == 10
