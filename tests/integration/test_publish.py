"""``cw publish`` against a real NATS: exactly once, bad lines reported and dead-lettered.

The pipelining and retry tests at the end use a stand-in for nats-py's ``publish_async``: they
are about how many publishes are in flight and what happens when one fails, which a healthy
server never shows.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import re
import sys
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from nats.aio.client import Client
from nats.js.api import PubAck
from nats.js.errors import NoStreamResponseError, NotFoundError
from rich.console import Console

from contracts.generate import CONTRACTS_DIR
from services.common.deadletters import TRUNCATED, DeadLetter
from services.common.retry import RetryPolicy
from services.common.streams import (
    DEAD_LETTERS_STREAM,
    EVENTS_STREAM,
)
from services.intake.adapters.files import KEEP, batches, read_lines
from services.intake.adapters.jetstream import (
    AsyncPublisher,
    JetStreamIntake,
    Outgoing,
)
from services.intake.adapters.postgres import PostgresArchive
from services.intake.domain.ports import ArchiveUnavailable, NotConfirmed
from services.intake.entrypoints.cli import publish_command, register, summary
from services.intake.service import publish_lines
from tests.factories import with_path
from tests.integration.conftest import Harness

EXAMPLES = CONTRACTS_DIR / "examples" / "events.jsonl"


@dataclass(frozen=True)
class Stored:
    seq: int
    subject: str
    data: bytes
    headers: dict[str, str]


async def stored(nc: Client, stream: str) -> list[Stored]:
    js = nc.jetstream()
    info = await js.stream_info(stream)
    out: list[Stored] = []
    if not info.state.messages:
        return out
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        try:
            msg = await js.get_msg(stream, seq)
        except NotFoundError:  # deleted
            continue
        out.append(Stored(seq, msg.subject or "", msg.data or b"", dict(msg.headers or {})))
    return out


async def publish(nats_url: str, path: Path) -> tuple[int, str]:
    buffer = io.StringIO()
    code = await publish_command(
        nats_url, str(path), console=Console(file=buffer, width=300), progress=False
    )
    return code, buffer.getvalue()


@pytest.mark.integration
async def test_the_examples_are_stored_exactly_once_even_when_published_twice(
    nats_url: str, nc: Client
) -> None:
    lines = EXAMPLES.read_bytes().splitlines()
    events = [orjson.loads(line) for line in lines]

    code, out = await publish(nats_url, EXAMPLES)
    assert code == 0, out
    n = len(lines)
    assert out.splitlines()[0] == f"{n} events sent: {n} new, 0 already held; 0 lines rejected"

    code, out = await publish(nats_url, EXAMPLES)
    assert code == 0, out
    assert out.splitlines() == [
        f"{n} events sent: 0 new, {n} already held; 0 lines rejected",
        f"  {n} already in CW_EVENTS: sent again within its 5m duplicate window, so NATS "
        "stored no second copy",
    ]

    messages = await stored(nc, EVENTS_STREAM)
    assert len(messages) == len(lines)
    assert sorted(m.headers["Nats-Msg-Id"] for m in messages) == sorted(
        e["event_id"] for e in events
    )
    by_id = {m.headers["Nats-Msg-Id"]: m for m in messages}
    for line, event in zip(lines, events, strict=True):
        message = by_id[event["event_id"]]
        assert message.data == line  # the publisher's bytes, unchanged
        assert message.subject == (
            f"cw.events.{event['district']}.{event['venue_id']}.{event['event_type']}"
        )
    assert await stored(nc, DEAD_LETTERS_STREAM) == []


def _bad_lines() -> dict[str, tuple[bytes, str]]:
    examples = [json.loads(line) for line in EXAMPLES.read_bytes().splitlines()]
    good = next(e for e in examples if e["event_type"] == "IssueFound")

    def bad(path: str, value: Any) -> bytes:
        obj = with_path(good, path, value)
        obj["event_id"] = "00000000-0000-4000-8000-00000000" + f"{len(path):04d}"
        return json.dumps(obj, ensure_ascii=False).encode()

    return {
        "malformed": (b'{"event_id": "x", ', "(event)"),
        "unknown type": (bad("event_type", "IssueClosed"), "event_type"),
        "missing": (bad("data.severity", ...), "data.severity"),
        "extra": (bad("data.颜色", "红"), "data.颜色"),
        "wrong type": (bad("data.evidence", "IMG-1.jpg"), "data.evidence"),
        "naive": (bad("occurred_at", "2023-03-15T10:05:00"), "occurred_at"),
        "unsafe venue": (bad("venue_id", "LY.FM.*"), "venue_id"),
        "oversized": (bad("data.description", "问" * 2001), "data.description"),
        "2 MB": (bad("data.description", "x" * 2_000_000), "(event)"),
    }


@pytest.mark.integration
async def test_bad_lines_are_reported_and_dead_lettered_and_the_good_ones_published(
    nats_url: str, nc: Client, tmp_path: Path
) -> None:
    good = EXAMPLES.read_bytes().splitlines()
    bad = _bad_lines()
    lines: list[bytes] = []
    expected: dict[int, tuple[bytes, str]] = {}
    for i, line in enumerate(good):
        lines.append(line)
        if i % 15 == 3 and len(expected) < len(bad):
            payload, field = list(bad.values())[len(expected)]
            lines.append(payload)
            expected[len(lines)] = (payload, field)
        if i == 10:
            lines.append(b"   ")  # blank: skipped, still counted as a line
    assert len(expected) == len(bad)
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")

    code, out = await publish(nats_url, path)

    assert code == 1, out
    assert (
        f"{len(good)} events sent: {len(good)} new, 0 already held; {len(bad)} lines rejected "
        "(1 blank line skipped)\n"
    ) in out
    for number, (_, field) in expected.items():
        assert f"line {number}: rejected: {field}: " in out
    assert len(await stored(nc, EVENTS_STREAM)) == len(good)

    letters = [
        DeadLetter.from_message(m.seq, m.subject, m.data, m.headers)
        for m in await stored(nc, DEAD_LETTERS_STREAM)
    ]
    assert {(d.line, d.field) for d in letters} == {(n, f) for n, (_, f) in expected.items()}
    for letter in letters:
        # Without CW_DISTRICT, filed under the line's district when it can be read.
        district = "unknown" if letter.field == "(event)" else "320703"
        assert letter.subject == f"cw.dlq.intake.{district}"
        assert letter.stage == "intake"
        assert letter.headers["Cw-Dlq-File"] == "mixed.jsonl"
        assert letter.reason.startswith(f"{letter.field}: ")
        payload = expected[letter.line or 0][0]
        if len(payload) > KEEP:
            assert letter.payload == payload[:KEEP]
            assert letter.headers[TRUNCATED] == str(len(payload))
        else:
            assert letter.payload == payload.strip()  # whitespace around a line is not kept

    # A second run stores nothing new: events and dead letters are both deduplicated.
    code, out = await publish(nats_url, path)
    assert code == 1
    assert (
        f"{len(good)} events sent: 0 new, {len(good)} already held; {len(bad)} lines rejected "
        "(1 blank line skipped)\n"
    ) in out
    assert len(await stored(nc, DEAD_LETTERS_STREAM)) == len(bad)


@pytest.mark.integration
async def test_a_nan_line_in_the_middle_is_reported_and_every_valid_line_published(
    nats_url: str, nc: Client, tmp_path: Path
) -> None:
    examples = [orjson.loads(line) for line in EXAMPLES.read_bytes().splitlines()]
    valid = [
        orjson.dumps({**examples[i % len(examples)], "event_id": str(uuid.UUID(int=i + 1))})
        for i in range(1000)
    ]
    nan = valid[0].replace(b'"schema_version":1', b'"schema_version":NaN')
    assert nan != valid[0]
    lines = [*valid[:500], nan, *valid[500:]]
    path = tmp_path / "with-nan.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")

    code, out = await publish(nats_url, path)

    assert code == 1, out  # the README: 1 means some lines were rejected, the rest published
    assert "1000 events sent: 1000 new, 0 already held; 1 line rejected\n" in out
    assert "line 501: rejected: (event): malformed JSON" in out
    assert "NaN" in out
    assert "Traceback" not in out
    assert len(await stored(nc, EVENTS_STREAM)) == 1000
    (letter,) = [
        DeadLetter.from_message(m.seq, m.subject, m.data, m.headers)
        for m in await stored(nc, DEAD_LETTERS_STREAM)
    ]
    assert (letter.line, letter.field, letter.payload) == (501, "(event)", nan)


@pytest.mark.integration
async def test_missing_streams_and_files_are_reported(nats_url: str, tmp_path: Path) -> None:
    code, out = await publish(nats_url, EXAMPLES)
    assert code == 2
    assert "cw init" in out

    code, out = await publish("nats://127.0.0.1:1", EXAMPLES)
    assert code == 2
    assert "cannot reach NATS at nats://127.0.0.1:1" in out


@pytest.mark.integration
async def test_a_missing_file_is_reported(nats_url: str, nc: Client, tmp_path: Path) -> None:
    code, out = await publish(nats_url, tmp_path / "nope.jsonl")
    assert code == 2
    assert "cannot read" in out


@pytest.mark.integration
def test_cw_publish_reads_stdin(
    nats_url: str,
    nc: Client,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = argparse.ArgumentParser(prog="cw")
    register(parser.add_subparsers(dest="command", required=True))
    monkeypatch.setenv("CW_NATS_URL", nats_url)
    data = EXAMPLES.read_bytes()[:4000]  # a cut last line: rejected, the rest published
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))

    args = parser.parse_args(["publish", "-", "--no-progress"])
    code = args.handler(args)

    out = capsys.readouterr().out
    complete = data.count(b"\n")
    assert code == 1, out
    assert f"{complete} events sent: {complete} new, 0 already held; 1 line rejected\n" in out
    assert f"line {complete + 1}: rejected: (event): malformed JSON" in out


# --- pipelining and retries, with a stand-in for JetStream ------------------------------------


class FlakyJetStream:
    """Behaves like nats-py's ``publish_async``: at most ``max_pending`` publishes await their
    answer (``publish_async`` waits for a free slot), and each answer comes after a pause. The
    first ``failures`` publishes of a subject fail: their answer is lost (``lost``: the future
    is never resolved, as after a server restart) or says there is no stream."""

    def __init__(
        self, failures: dict[str, int] | None = None, *, max_pending: int = 256, lost: bool = True
    ) -> None:
        self.failures = dict(failures or {})
        self.lost = lost
        self.slots = asyncio.Semaphore(max_pending)
        self.in_flight = 0
        self.most_in_flight = 0
        self.attempts: dict[str, int] = {}
        self.seq = 0

    async def publish_async(
        self, subject: str, payload: bytes = b"", **options: object
    ) -> asyncio.Future[PubAck]:
        await self.slots.acquire()
        self.attempts[subject] = self.attempts.get(subject, 0) + 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[PubAck] = loop.create_future()
        future.add_done_callback(self._answered)
        if self.failures.get(subject, 0) > 0:
            self.failures[subject] -= 1
            if not self.lost:
                loop.call_later(0.01, self._settle, future, NoStreamResponseError())
        else:
            self.seq += 1
            loop.call_later(0.01, self._settle, future, PubAck(stream=EVENTS_STREAM, seq=self.seq))
        return future

    @staticmethod
    def _settle(future: asyncio.Future[PubAck], answer: PubAck | Exception) -> None:
        if future.done():
            return
        if isinstance(answer, Exception):
            future.set_exception(answer)
        else:
            future.set_result(answer)

    def _answered(self, future: asyncio.Future[PubAck]) -> None:
        del future
        self.in_flight -= 1
        self.slots.release()


def _messages(n: int) -> list[Outgoing]:
    return [Outgoing(f"s.{i}", b"{}", {"Nats-Msg-Id": str(i)}) for i in range(n)]


@pytest.mark.integration
async def test_many_publishes_are_in_flight_at_once_but_no_more_than_the_window() -> None:
    js = FlakyJetStream(max_pending=16)
    publisher = AsyncPublisher(js)
    acked: list[int] = []
    for message in _messages(200):
        await publisher.submit(message, lambda ack: acked.append(ack.seq))
    await publisher.drain()
    assert sorted(acked) == list(range(1, 201))
    assert js.most_in_flight == 16


@pytest.mark.integration
@pytest.mark.parametrize("lost", [True, False], ids=["no answer", "no stream"])
async def test_a_publish_that_fails_for_a_while_is_repeated_until_acknowledged(lost: bool) -> None:
    js = FlakyJetStream(failures={"s.3": 3}, max_pending=4, lost=lost)
    publisher = AsyncPublisher(
        js, ack_timeout_s=0.05, backoff=RetryPolicy(first_s=0.001, attempts=10)
    )
    acked: list[int] = []
    for message in _messages(10):
        await publisher.submit(message, lambda ack: acked.append(ack.seq))
    await publisher.drain()
    assert len(acked) == 10
    assert js.attempts["s.3"] == 4


@pytest.mark.integration
async def test_a_publish_that_never_succeeds_stops_the_run_and_is_counted() -> None:
    js = FlakyJetStream(failures={"s.2": 99}, max_pending=4, lost=False)
    publisher = AsyncPublisher(
        js, ack_timeout_s=0.05, backoff=RetryPolicy(attempts=3, first_s=0.001)
    )
    acked: list[int] = []
    with pytest.raises(NotConfirmed, match=r"s\.2"):
        for message in _messages(50):
            await publisher.submit(message, lambda ack: acked.append(ack.seq))
        await publisher.drain()
    with pytest.raises(NotConfirmed):
        await publisher.drain()
    assert js.attempts["s.2"] == 3
    assert publisher.unconfirmed == 1
    assert len(acked) < 49  # stopped early, and every other one in flight was still confirmed


@pytest.mark.integration
async def test_when_nats_gives_up_the_report_says_how_far_it_got_and_exits_2() -> None:
    lines = EXAMPLES.read_bytes().splitlines()
    events = [orjson.loads(line) for line in lines]
    doomed = next(i for i, e in enumerate(events) if i > 20 and e["event_type"] == "IssueFound")
    e = events[doomed]
    js = FlakyJetStream(
        failures={f"cw.events.{e['district']}.{e['venue_id']}.{e['event_type']}": 99},
        max_pending=8,
    )
    publisher = AsyncPublisher(
        js, ack_timeout_s=0.05, backoff=RetryPolicy(attempts=2, first_s=0.001)
    )
    sink = JetStreamIntake(publisher, file_name="events.jsonl")

    report = await publish_lines(batches(read_lines(io.BytesIO(b"\n".join(lines)))), sink)

    assert report.exit_code == 2
    assert report.unconfirmed >= 1
    assert report.failure is not None
    assert report.new + report.unconfirmed == report.sent <= len(lines)
    text = "\n".join(summary(report, timedelta(minutes=5)))
    assert f"stopped after line {report.lines_read}" in text
    assert "run the same command again" in text


# --- the read model's archive, as cw publish asks it --------------------------------------------


@pytest.mark.integration
async def test_the_archive_answers_with_what_the_projector_archived(harness: Harness) -> None:
    lines = EXAMPLES.read_bytes().splitlines()[:5]
    events = [orjson.loads(line) for line in lines]
    code, _ = await publish(harness.settings.nats_url, EXAMPLES)
    assert code == 0
    await harness.project()
    archive = PostgresArchive(harness.settings.database_url)
    try:
        unknown = uuid.uuid4()
        held = await archive.held([uuid.UUID(e["event_id"]) for e in events] + [unknown])
    finally:
        await archive.close()
    assert unknown not in held
    by_id = {
        uuid.UUID(e["event_id"]): line
        for e, line in zip(events, EXAMPLES.read_bytes().splitlines(), strict=False)
    }
    assert held == by_id  # the publisher's bytes, as archived


@pytest.mark.integration
async def test_an_archive_that_cannot_be_asked_says_why(database_url: str) -> None:
    for url, why in [
        (database_url, "the read model does not exist yet (cw init)"),
        (
            "postgresql://postgres@127.0.0.1:1/x",
            "cannot reach PostgreSQL at postgresql://postgres@127.0.0.1:1/x",
        ),
    ]:
        archive = PostgresArchive(url)
        try:
            with pytest.raises(ArchiveUnavailable, match=re.escape(why)):
                await archive.held([uuid.uuid4()])
        finally:
            await archive.close()


@pytest.mark.integration
async def test_an_event_id_used_again_for_other_content_is_reported_as_a_conflict(
    harness: Harness, tmp_path: Path
) -> None:
    """Within the duplicate window NATS drops the second payload; the archive tells that it was
    another event, not the one held, and cw publish says so line by line and exits 1."""
    lines = EXAMPLES.read_bytes().splitlines()[:3]
    first = tmp_path / "first.jsonl"
    first.write_bytes(b"\n".join(lines) + b"\n")
    code, _ = await publish(harness.settings.nats_url, first)
    assert code == 0
    await harness.project()

    changed = orjson.loads(lines[1])
    changed["venue_id"] = "LY-FM-999"  # another event under the same event_id
    again = tmp_path / "again.jsonl"
    again.write_bytes(b"\n".join([lines[0], orjson.dumps(changed), lines[2]]) + b"\n")
    buffer = io.StringIO()
    code = await publish_command(
        harness.settings.nats_url,
        str(again),
        console=Console(file=buffer, width=300),
        database_url=harness.settings.database_url,
        progress=False,
    )
    out = buffer.getvalue().splitlines()
    assert code == 1, out
    assert out[0] == (
        f"line 2: conflict: event_id {changed['event_id']} is held by the read model with "
        "other content; CW_EVENTS took this one for a duplicate and kept the first"
    )
    assert out[1] == "3 events sent: 0 new, 2 already held, 1 conflict; 0 lines rejected"
