"""``cw publish`` as a use case: judge every line, publish the events, dead-letter the rest.

A bad line never holds back a good one: each line is judged on its own, and the valid events
are published whatever else the file contains. Publishing stops only when the stream does not
confirm a message; the report then says how far it got, and running the same file again is
safe because every stored event comes back as a duplicate.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable

from services.intake.domain.lines import Accepted, IntakeReport, Line, Rejected, judge
from services.intake.domain.ports import IntakeSink, NotConfirmed


def _noop_line(line: Line) -> None:
    del line


def _noop_rejected(rejected: Rejected) -> None:
    del rejected


async def publish_lines(
    batches: AsyncIterator[list[Line]],
    sink: IntakeSink,
    *,
    on_line: Callable[[Line], None] = _noop_line,
    on_rejected: Callable[[Rejected], None] = _noop_rejected,
) -> IntakeReport:
    report = IntakeReport()
    sent = 0

    def event_acked(duplicate: bool) -> None:
        if duplicate:
            report.duplicate += 1
        else:
            report.published += 1

    def dead_letter_acked(duplicate: bool) -> None:
        # A duplicate here is the same bad line dead-lettered by an earlier run: it is stored.
        del duplicate
        report.dead_lettered += 1

    try:
        async for batch in batches:
            for line in batch:
                verdict = judge(line)
                if verdict is None:
                    report.blank += 1
                elif isinstance(verdict, Accepted):
                    await sink.publish(verdict, event_acked)
                    sent += 1
                else:
                    report.rejected += 1
                    on_rejected(verdict)
                    await sink.dead_letter(verdict, dead_letter_acked)
                    sent += 1
                report.lines_read = line.number
                on_line(line)
        await sink.drain()
    except NotConfirmed as exc:
        report.failure = str(exc)
        # The failure is reported already; the others in flight are only waited for.
        with contextlib.suppress(NotConfirmed):
            await sink.drain()
    report.unconfirmed = sent - report.published - report.duplicate - report.dead_lettered
    return report
