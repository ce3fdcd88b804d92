"""``cw publish FILE.jsonl``: validate a file of events and publish it into ``CW_EVENTS``."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

import nats.errors
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from contracts.wire import DEAD_LETTERS_STREAM, EVENTS_STREAM, INTAKE_DEAD_LETTER_SUBJECT_ADDRESS
from services.common.cliargs import positive_int
from services.common.connect import NatsAccess, Refused, Unreachable
from services.common.durations import format_duration
from services.common.runtime import run
from services.common.settings import Settings
from services.intake.adapters.files import STDIN, batches, open_input, read_lines
from services.intake.adapters.jetstream import (
    STAGE,
    StreamsMissing,
)
from services.intake.bootstrap import intake
from services.intake.domain.lines import Conflict, IntakeReport, Line, Rejected
from services.intake.service import publish_lines

EXIT_CODES = """\
exit status:
  0  every line was published (or was held already) or blank
  1  some lines were rejected, or some events are conflicts (their event_id is
     held with other content); every valid line was still published, the rejected
     ones and the conflicts are listed above the summary, the rejected ones kept in
     CW_DEAD_LETTERS (cw dlq list)
  2  NATS could not be reached or did not confirm some events; run the same
     command again: nothing is doubled
  3  NATS refused this user (its credentials, or a subject it may not publish to,
     such as another district's): said in one line; nothing more was sent
"""

DESCRIPTION = """\
Validate each line of a JSON Lines file against the event contract (contracts/README.md) and
publish the valid events into CW_EVENTS on cw.events.<district>.<venue_id>.<event_type>, with
the header Nats-Msg-Id set to event_id. Many events are in flight at once. Each rejected line
is reported with its line number, field and reason and sent to the dead-letter stream on
cw.dlq.intake.<district>: CW_DISTRICT, the district this publisher publishes for (required when
NATS restricts the user to it), else the line's district when it can be read, else "unknown".
Blank lines are skipped.

The summary counts each event once: new; already held, either by CW_EVENTS (sent again within
its duplicate window, so NATS stored no second copy) or by the read model (sent again later:
stored again, and the projector skips it by event_id); or a conflict: its event_id is held by
the read model with other content (NATS dropped it as a duplicate within the window, or the
projector dead-letters it as event_id_reused), each listed with its line number and event_id.
The read model is asked at
CW_DATABASE_URL when it answers within 2 s; without it, events are still published, and the
summary says that repeats older than the duplicate window are counted as new.
"""


async def publish_command(
    nats_url: NatsAccess | str,
    path: str,
    *,
    console: Console,
    database_url: str | None = None,
    progress: bool = True,
    in_flight: int = 256,
    district: str | None = None,
) -> int:
    """Run ``cw publish``; print to ``console``; return the exit status. ``database_url``: the
    read model to ask which events it holds (``None``: not asked)."""
    try:
        async with intake(
            nats_url, in_flight=in_flight, database_url=database_url, district=district
        ) as wired:
            with (
                open_input(path) as (stream, total, name),
                _progress_bar(console, total, enabled=progress) as advance,
            ):
                report = await publish_lines(
                    batches(read_lines(stream)),
                    wired.sink_for(name),
                    archive=wired.archive,
                    on_line=advance,
                    on_rejected=lambda r: _say(console, _rejection(r)),
                    on_conflict=lambda c: _say(console, conflict_line(c)),
                )
    except StreamsMissing as exc:
        _say(console, str(exc))
        return 2
    except Refused as exc:
        # One line, and nothing else: a refusal is not fixed by sending again.
        _say(console, str(exc))
        return 3
    except Unreachable as exc:
        _say(console, str(exc))
        return 2
    except nats.errors.TimeoutError:
        # A timeout is an OSError too: not the file's fault.
        _say(console, "NATS did not answer in time; is it overloaded, or is this NATS user "
                      "refused what it asked? (README, 'Who may do what')")  # fmt: skip
        return 2
    except OSError as exc:
        _say(console, f"cannot read {path}: {exc.strerror or exc}")
        return 2
    for line in summary(report, wired.duplicate_window, district):
        _say(console, line)
    return report.exit_code


def _rejection(rejected: Rejected) -> str:
    return f"line {rejected.line}: rejected: {rejected.reason}"


def conflict_line(conflict: Conflict) -> str:
    """``line 12: conflict: event_id … is held by the read model with other content; …``"""
    fate = (
        f"{EVENTS_STREAM} took this one for a duplicate and kept the first"
        if conflict.dropped
        else "the projector dead-letters this one as event_id_reused"
    )
    return (
        f"line {conflict.line}: conflict: event_id {conflict.event_id} is held by the read "
        f"model with other content; {fate}"
    )


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def summary(
    report: IntakeReport, duplicate_window: timedelta | None, district: str | None = None
) -> list[str]:
    """What became of the file, each event counted once; a line of explanation per kind of
    repeat, so that a count never says more than happened."""
    r = report
    # A district's publisher may not read the stream's configuration: its window goes unnamed.
    window = f"{format_duration(duplicate_window)} " if duplicate_window is not None else ""
    first = f"{_count(r.sent, 'event')} sent: {r.new} new, {r.held} already held"
    if r.conflicts:
        first += f", {_count(r.conflicts, 'conflict')}"
    first += f"; {_count(r.rejected, 'line')} rejected"
    if r.blank:
        first += f" ({_count(r.blank, 'blank line')} skipped)"
    lines = [first]
    if r.duplicate:
        lines.append(
            f"  {r.duplicate} already in {EVENTS_STREAM}: sent again within its {window}"
            "duplicate window, so NATS stored no second copy"
        )
    if r.already_projected:
        lines.append(
            f"  {r.already_projected} already in the read model: sent again after "
            f"{EVENTS_STREAM}'s {window}duplicate window, so stored there again; the projector "
            "skips them by event_id, nothing is doubled"
        )
    if r.conflicts:
        lines.append(
            f"  {_count(r.conflicts, 'conflict')}: an event_id the read model holds with other "
            "content (listed above): NATS drops such an event within its duplicate window, "
            "the projector dead-letters it after (cw dlq list --stage projector); a changed "
            "event needs a new event_id"
        )
    if r.archive_unavailable is not None and r.new:
        lines.append(
            f"  note: the read model was not asked ({r.archive_unavailable}), so new means not "
            f"seen within {EVENTS_STREAM}'s {window}duplicate window; an event sent before "
            "that is only recognised by the projector, which skips it by event_id"
        )
    if r.rejected:
        lines.append(
            f"rejected lines are kept in {DEAD_LETTERS_STREAM} on "
            f"{INTAKE_DEAD_LETTER_SUBJECT_ADDRESS.format(district=district or '<district>')}: "
            f"cw dlq list --stage {STAGE}; fix and cw dlq replay SEQ --file FIXED.json"
        )
    if r.failure is not None:
        lines.append(
            f"stopped after line {r.lines_read}: {EVENTS_STREAM} did not confirm "
            f"{_count(r.unconfirmed, 'message')}: {r.failure}"
        )
        lines.append("nothing confirmed is lost; run the same command again (nothing is doubled)")
    return lines


def _say(console: Console, text: str) -> None:
    console.print(text, markup=False, highlight=False, soft_wrap=True)


@contextmanager
def _progress_bar(
    console: Console, total: int | None, *, enabled: bool
) -> Iterator[Callable[[Line], None]]:
    bar = Progress(
        TextColumn("publishing"),
        BarColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[lines]} lines"),
        TimeElapsedColumn(),
        console=console,
        disable=not enabled or not console.is_terminal,
    )
    task = bar.add_task("publish", total=total, lines=0)

    def advance(line: Line) -> None:
        # The byte count includes the end of line, so a file ends at exactly 100%.
        bar.update(task, advance=line.size + 1, lines=line.number)

    with bar:
        yield advance
        if total is not None:
            bar.update(task, completed=total)  # "\r\n" line ends count one byte short


def _publish(args: argparse.Namespace) -> int:
    console = Console(soft_wrap=True)
    settings = Settings()
    return run(
        publish_command(
            NatsAccess.from_settings(settings),
            args.file,
            console=console,
            database_url=settings.database_url,
            progress=not args.no_progress,
            in_flight=args.in_flight,
            district=settings.district,
        )
    )


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "publish",
        help="validate a JSON Lines file of events and publish it (exit 1 if lines were rejected)",
        description=DESCRIPTION,
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "file", metavar="FILE.jsonl", help=f"the events, one per line; {STDIN} reads stdin"
    )
    p.add_argument(
        "--in-flight",
        type=positive_int,
        default=256,
        metavar="N",
        help="publishes awaiting their acknowledgement at once (default: 256)",
    )
    p.add_argument("--no-progress", action="store_true", help="do not show the progress bar")
    p.set_defaults(handler=_publish)
