"""``cw report``: the bureau's numbers as tables people read."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path

import asyncpg
from rich.console import Console

from services.common.campaign import load_campaign
from services.common.connect import failure_text, mask_url
from services.common.localtime import MOMENT_FORMS, MomentError, MomentInput, parse_moment
from services.common.runtime import run
from services.common.settings import Settings
from services.reports import bootstrap
from services.reports.domain.reports import NOW_ONLY, REPORTS
from services.reports.entrypoints import output, venues

NAMES = {name.replace("_", "-"): name for name in REPORTS}
"""What is typed (``on-time``) and the report it names (``on_time``)."""
EXIT_SHOWN, EXIT_NOTHING, EXIT_FAILED = 0, 1, 2


def _report_name(text: str) -> str:
    if text == "all":
        return text
    if text not in NAMES:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a report: choose from {', '.join(NAMES)} or all"
        )
    return NAMES[text]


def _moment(text: str) -> MomentInput:
    try:
        return parse_moment(text)
    except MomentError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _refused_behind_the_views(settings: Settings) -> str | None:
    try:
        return run(bootstrap.why_refused(settings))
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return None  # the refusal itself is then the news


def _report(args: argparse.Namespace) -> int:
    settings = Settings()
    campaign = load_campaign(settings.campaign_file)
    every = not args.reports or "all" in args.reports
    names = list(dict.fromkeys(REPORTS if every else args.reports))
    if args.as_of is not None:
        if not every and NOW_ONLY.intersection(names):
            print(
                f"cw report: {', '.join(sorted(NOW_ONLY.intersection(names)))} shows what is so "
                "now; --as-of cannot replay it (the archive keeps the events applied, not when "
                "each one waited)",
                file=sys.stderr,
            )
            return EXIT_FAILED
        names = [n for n in names if n not in NOW_ONLY]
    if args.format == "xlsx" and args.output is None:
        print(
            "cw report: --format xlsx writes a workbook, not text: give --output FILE.xlsx",
            file=sys.stderr,
        )
        return EXIT_FAILED
    if args.format == "csv" and len(names) > 1:
        print(
            "cw report: --format csv writes one report: name it (e.g. cw report overdue "
            "--format csv)",
            file=sys.stderr,
        )
        return EXIT_FAILED
    as_of: datetime | None = None
    if args.as_of is not None:
        try:
            as_of = args.as_of.resolve(campaign.timezone)
        except MomentError as exc:
            print(f"cw report: --as-of: {exc}", file=sys.stderr)
            return EXIT_FAILED
    district = None if args.district is None else campaign.names.district_code(args.district)
    reader = bootstrap.reader_url(settings)
    where = f"PostgreSQL at {mask_url(reader.url)} ({reader.setting})"
    try:
        facts, reports = run(bootstrap.reports(settings, campaign, names, district, as_of))
    except asyncpg.InsufficientPrivilegeError as exc:
        behind = _refused_behind_the_views(settings)
        if behind is not None:
            print(f"cw report: the views at {where} refuse everyone: {behind}", file=sys.stderr)
            return EXIT_FAILED
        print(
            f"cw report: {where} may not read the views ({exc}); the read-only role reads "
            "them once `cw init` ran with CW_READER_PASSWORD",
            file=sys.stderr,
        )
        return EXIT_FAILED
    except (asyncpg.UndefinedTableError, asyncpg.UndefinedColumnError) as exc:
        print(
            f"cw report: the views at {where} are missing or older than this cw ({exc}): "
            "run cw init",
            file=sys.stderr,
        )
        return EXIT_FAILED
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        print(
            f"cw report: cannot read {where}: {failure_text(exc)}; is it running, and is "
            f"{reader.setting} right?",
            file=sys.stderr,
        )
        return EXIT_FAILED
    if district is not None and not (
        facts.venues or facts.issues or facts.venue_phases or facts.waiting
    ):
        print(
            f"cw report: 区 {campaign.names.district(district)} 没有任何数据 (nothing known of "
            f"district {district})",
            file=sys.stderr,
        )
        return EXIT_NOTHING
    lang = args.lang
    content: bytes | None = None
    if args.format == "xlsx":
        content = output.as_xlsx(facts, reports, campaign, lang)
    elif args.format == "json":
        content = output.as_json(facts, reports, campaign, lang).encode()
    elif args.format == "csv":
        content = output.as_csv(reports[0], campaign, lang).encode()
    elif args.format == "markdown":
        content = output.as_markdown(facts, reports, campaign, lang).encode()
    elif args.output is None and sys.stdout.isatty():
        output.print_tables(Console(), facts, reports, campaign, lang)
        return EXIT_SHOWN
    else:
        content = ("\n".join(output.plain_lines(facts, reports, campaign, lang)) + "\n").encode()
    if args.output is None:
        # Bytes, UTF-8 whatever the locale: a CSV's byte order mark promises UTF-8.
        sys.stdout.flush()
        sys.stdout.buffer.write(content)
        sys.stdout.buffer.flush()
        return EXIT_SHOWN
    try:
        Path(args.output).write_bytes(content)
    except OSError as exc:
        print(f"cw report: cannot write {args.output}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_SHOWN


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "report",
        help="the bureau's numbers as tables: summary, overdue, rebounds, streets, on-time, "
        "waiting, unknown-items",
        description="The bureau's reports, read from the public views as the read-only role "
        "(CW_READER_DATABASE_URL; CW_DATABASE_URL when it is unset), or as they stood at a past "
        "moment (--as-of: the archive replayed up to it): summary (by district, phase and venue "
        "kind: coverage, inspections by kind, pass rate, issues), overdue (venue, item, order "
        "number, deadline, days overdue, first responsible person, officer), rebounds (反复反弹), "
        "streets (街道), on-time (closed by the original and by the extended deadline), waiting "
        "(follow-ups waiting for their IssueFound, the longest first; now only), unknown-items "
        "(item codes the campaign's checklist does not list). Districts and items are shown by "
        "the campaign file's names (csv and json: the code and the name). Times are local (the "
        "campaign's zone). On a terminal: tables (one block per row when a table is wider than "
        "the terminal); through a pipe: tab-separated lines, never wrapped. csv starts with a "
        "UTF-8 byte order mark so that Excel reads its Chinese; xlsx is an Excel workbook (a "
        "sheet per report) and needs --output.",
        epilog="exit status: 0 shown (also when a report has no rows); 1 nothing is known of "
        "the --district asked; 2 a bad argument (xlsx without --output), or PostgreSQL could not "
        "be read (down, a wrong URL, a role that may not read the views, a read model cw init "
        "has not made), or --output could not be written.",
    )
    p.add_argument(
        "reports",
        nargs="*",
        type=_report_name,
        metavar="REPORT",
        help=f"which: {', '.join(NAMES)} or all (default: all)",
    )
    p.add_argument(
        "--format",
        choices=("table", "csv", "xlsx", "json", "markdown"),
        default="table",
        help="table (default: for a person; tab-separated through a pipe), csv (one report, "
        "with a UTF-8 byte order mark for Excel), xlsx (an Excel workbook, a sheet per report; "
        "needs --output), json (for programs) or markdown",
    )
    p.add_argument(
        "--output",
        "-o",
        metavar="FILE",
        help="write to FILE instead of standard output (required with --format xlsx)",
    )
    p.add_argument(
        "--lang",
        choices=("zh", "en"),
        default="zh",
        help="zh: Simplified Chinese (default); en: English headings and codes",
    )
    p.add_argument(
        "--district",
        metavar="D",
        help="one district's numbers, by its code or its name (default: every one)",
    )
    p.add_argument(
        "--as-of",
        type=_moment,
        metavar="T",
        help=f"as they stood at T, replayed from the archive: {MOMENT_FORMS}",
    )
    p.set_defaults(handler=_report)
    venues.register(sub)
