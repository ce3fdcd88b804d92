"""``cw publish`` as a use case: judge every line, publish the events, dead-letter the rest.

A bad line never holds back a good one: each line is judged on its own, and the valid events
are published whatever else the file contains. Publishing stops only when the stream does not
confirm a message; the report then says how far it got, and running the same file again is
safe because nothing is doubled.

What the report calls new is checked against the read model's archive when it can be asked,
one query per batch, asked while the batch before it is sent: ``CW_EVENTS`` drops a repeat
only within its duplicate window, and the projector skips a later one by event_id, which only
the archive knows. The read model is a courtesy here, never a condition: when it cannot be
asked, the events are published all the same and the report says so.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from uuid import UUID

from services.intake.domain.lines import (
    Accepted,
    Conflict,
    IntakeReport,
    Line,
    Prior,
    Rejected,
    judge,
    prior_of,
)
from services.intake.domain.ports import (
    ArchiveUnavailable,
    IntakeSink,
    NotConfirmed,
    OnAck,
    ReadModelArchive,
)

Judged = list[tuple[Line, Accepted | Rejected | None]]

NOT_ASKED = "no database given"
"""``archive_unavailable`` when the caller gave no read model to ask."""


def _noop_line(line: Line) -> None:
    del line


def _noop_rejected(rejected: Rejected) -> None:
    del rejected


def _noop_conflict(conflict: Conflict) -> None:
    del conflict


async def publish_lines(
    batches: AsyncIterator[list[Line]],
    sink: IntakeSink,
    *,
    archive: ReadModelArchive | None = None,
    on_line: Callable[[Line], None] = _noop_line,
    on_rejected: Callable[[Rejected], None] = _noop_rejected,
    on_conflict: Callable[[Conflict], None] = _noop_conflict,
) -> IntakeReport:
    report = IntakeReport(archive_unavailable=NOT_ASKED if archive is None else None)
    sent = 0

    def event_acked(accepted: Accepted, prior: Prior | None) -> OnAck:
        def acked(duplicate: bool) -> None:
            report.count_ack(duplicate, prior)
            if prior == "other":
                on_conflict(Conflict(accepted.line, accepted.msg_id, dropped=duplicate))

        return acked

    def dead_letter_acked(duplicate: bool) -> None:
        # A duplicate here is the same bad line dead-lettered by an earlier run: it is stored.
        del duplicate
        report.dead_lettered += 1

    async def ask(events: list[Accepted]) -> Mapping[UUID, bytes]:
        nonlocal archive
        if archive is None or not events:
            return {}
        try:
            return await archive.held([a.event.event_id for a in events])
        except ArchiveUnavailable as exc:
            report.archive_unavailable = str(exc)
            archive = None
            return {}

    async def send(verdicts: Judged, held: Mapping[UUID, bytes]) -> None:
        nonlocal sent
        for line, verdict in verdicts:
            if verdict is None:
                report.blank += 1
            elif isinstance(verdict, Accepted):
                prior = prior_of(verdict, held.get(verdict.event.event_id))
                await sink.publish(verdict, event_acked(verdict, prior))
                report.sent += 1
                sent += 1
            else:
                report.rejected += 1
                on_rejected(verdict)
                await sink.dead_letter(verdict, dead_letter_acked)
                sent += 1
            report.lines_read = line.number
            on_line(line)

    # The archive is asked about the next batch while this one is sent, so that its answer
    # costs no time of its own; one question at a time (one connection).
    ahead: tuple[Judged, asyncio.Task[Mapping[UUID, bytes]]] | None = None
    try:
        async for batch in batches:
            verdicts = [(line, judge(line)) for line in batch]
            events = [v for _, v in verdicts if isinstance(v, Accepted)]
            previous, ahead = ahead, None
            held = await previous[1] if previous is not None else {}
            ahead = (verdicts, asyncio.create_task(ask(events)))
            if previous is not None:
                await send(previous[0], held)
        if ahead is not None:
            previous, ahead = ahead, None
            await send(previous[0], await previous[1])
        await sink.drain()
    except NotConfirmed as exc:
        report.failure = str(exc)
        # The failure is reported already; the others in flight are only waited for.
        with contextlib.suppress(NotConfirmed):
            await sink.drain()
    finally:
        if ahead is not None:
            ahead[1].cancel()
    confirmed = report.new + report.held + report.conflicts + report.dead_lettered
    report.unconfirmed = sent - confirmed
    return report
