"""``cw publish FILE.jsonl``: validate a file of events and publish it into ``CW_EVENTS``."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from contracts.wire import DEAD_LETTERS_STREAM, EVENTS_STREAM, dead_letter_subject
from services.common.cliargs import positive_int
from services.common.connect import Unreachable
from services.common.runtime import run
from services.common.settings import Settings
from services.intake.adapters.files import STDIN, batches, open_input, read_lines
from services.intake.adapters.jetstream import (
    STAGE,
    StreamsMissing,
)
from services.intake.bootstrap import intake
from services.intake.domain.lines import IntakeReport, Line, Rejected
from services.intake.service import publish_lines

EXIT_CODES = """\
exit status:
  0  every line was published (or was already there: a duplicate) or blank
  1  some lines were rejected; every valid line was still published, the rejected
     ones are listed above the summary and kept in CW_DEAD_LETTERS (cw dlq list)
  2  NATS could not be reached or did not confirm some events; run the same
     command again: events already stored come back as duplicates, not copies
"""

DESCRIPTION = """\
Validate each line of a JSON Lines file against the event contract (contracts/README.md) and
publish the valid events into CW_EVENTS on cw.events.<district>.<venue_id>.<event_type>, with
the header Nats-Msg-Id set to event_id so that a repeated event is stored once. Many events are
in flight at once. Each rejected line is reported with its line number, field and reason and
sent to the dead-letter stream on cw.dlq.intake. Blank lines are skipped.
"""


async def publish_command(
    nats_url: str,
    path: str,
    *,
    console: Console,
    progress: bool = True,
    in_flight: int = 256,
) -> int:
    """Run ``cw publish``; print to ``console``; return the exit status."""
    try:
        async with intake(nats_url, in_flight=in_flight) as sink_for:
            with (
                open_input(path) as (stream, total, name),
                _progress_bar(console, total, enabled=progress) as advance,
            ):
                report = await publish_lines(
                    batches(read_lines(stream)),
                    sink_for(name),
                    on_line=advance,
                    on_rejected=lambda r: _say(console, _rejection(r)),
                )
    except StreamsMissing as exc:
        _say(console, str(exc))
        return 2
    except Unreachable as exc:
        _say(console, str(exc))
        return 2
    except OSError as exc:
        _say(console, f"cannot read {path}: {exc.strerror or exc}")
        return 2
    for line in summary(report):
        _say(console, line)
    return report.exit_code


def _rejection(rejected: Rejected) -> str:
    return f"line {rejected.line}: rejected: {rejected.reason}"


def summary(report: IntakeReport) -> list[str]:
    rejected = report.rejected
    lines = [
        f"published {report.published}, duplicate {report.duplicate}, rejected {rejected}"
        + (f" (blank lines skipped: {report.blank})" if report.blank else "")
    ]
    if rejected:
        lines.append(
            f"rejected lines are kept in {DEAD_LETTERS_STREAM} on {dead_letter_subject(STAGE)}: "
            f"cw dlq list --stage {STAGE}; fix and cw dlq replay SEQ --file FIXED.json"
        )
    if report.failure is not None:
        lines.append(
            f"stopped after line {report.lines_read}: {EVENTS_STREAM} did not confirm "
            f"{report.unconfirmed} message(s): {report.failure}"
        )
        lines.append(
            "nothing confirmed is lost; run the same command again "
            "(events already stored come back as duplicates)"
        )
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
    return run(
        publish_command(
            Settings().nats_url,
            args.file,
            console=console,
            progress=not args.no_progress,
            in_flight=args.in_flight,
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
