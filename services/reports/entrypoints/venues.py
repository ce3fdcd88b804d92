"""``cw venues``: the registered venues, to find one's id (``cw venue``) or whom to call."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import asyncpg
from rich.console import Console

from services.common.campaign import Names, load_campaign
from services.common.connect import failure_text, mask_url
from services.common.runtime import run
from services.common.settings import Settings
from services.reports import bootstrap
from services.reports.domain.model import VenueFact
from services.reports.domain.reports import venue_list
from services.reports.entrypoints import output

EXIT_SHOWN, EXIT_NOTHING, EXIT_FAILED = 0, 1, 2


def as_json(district: str | None, venues: list[VenueFact], names: Names) -> dict[str, Any]:
    """One document: codes and the district's name, a person as ``{"name", "phone"}``
    (``officer`` ``null`` when none)."""
    return {
        "district": district,
        "venues": [
            {
                "district": v.district,
                "district_name": names.district(v.district),
                "venue_id": v.venue_id,
                "name": v.name,
                "kind": v.kind,
                "street": v.street,
                "first_responsible": {
                    "name": v.first_responsible_name,
                    "phone": v.first_responsible_phone,
                },
                "officer": (
                    {"name": v.officer_name, "phone": v.officer_phone} if v.officer_name else None
                ),
            }
            for v in sorted(venues, key=lambda v: (v.district, v.venue_id))
        ],
    }


def _venues(args: argparse.Namespace) -> int:
    settings = Settings()
    campaign = load_campaign(settings.campaign_file)
    reader = bootstrap.reader_url(settings)
    district = None if args.district is None else campaign.names.district_code(args.district)
    try:
        venues = run(bootstrap.venues(settings, district))
    except (asyncpg.UndefinedTableError, asyncpg.UndefinedColumnError) as exc:
        print(f"cw venues: the views are missing ({exc}): run cw init", file=sys.stderr)
        return EXIT_FAILED
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        print(
            f"cw venues: cannot read PostgreSQL at {mask_url(reader.url)} ({reader.setting}): "
            f"{failure_text(exc)}",
            file=sys.stderr,
        )
        return EXIT_FAILED
    if district is not None and not venues:
        print(
            f"cw venues: 区 {campaign.names.district(district)} 没有已登记的场所 (no venue "
            f"registered in district {district})",
            file=sys.stderr,
        )
        return EXIT_NOTHING
    report = venue_list(venues)
    if args.json:
        print(json.dumps(as_json(district, venues, campaign.names), ensure_ascii=False, indent=2))
    elif sys.stdout.isatty():
        output.print_report(Console(), report, campaign, "zh")
    else:
        print("\n".join(output.tab_separated(report, campaign, "zh")))
    return EXIT_SHOWN


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "venues",
        help="the registered venues: id, name, kind, street, whom to call",
        description="The registered venues (the venues view, read as the read-only role: "
        "CW_READER_DATABASE_URL, else CW_DATABASE_URL), by district and id: name, kind, street, "
        "the first responsible person and the officer, each name and phone in a column of its "
        "own. On a terminal a table (one block per venue when it is wider than the terminal); "
        "through a pipe a header and one tab-separated line per venue, never wrapped. The "
        "district is shown by the campaign file's name (--json: its code and district_name).",
        epilog="exit status: 0 shown; 1 no venue registered in the --district asked; 2 "
        "PostgreSQL could not be read",
    )
    p.add_argument(
        "--district",
        metavar="D",
        help="one district's venues, by its code or its name (default: every one)",
    )
    p.add_argument("--json", action="store_true", help="one JSON document, for programs")
    p.set_defaults(handler=_venues)
