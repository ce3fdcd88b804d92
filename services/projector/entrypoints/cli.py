"""The projector's entrypoints, thin shells over the bootstrap: its line in the registry of
services (``cw run projector``, ``cw init``, ``cw dev``), and ``cw rebuild``, ``cw venue`` and
``cw audit``."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import datetime

import asyncpg
from rich.console import Console

from services.common.campaign import Names, load_campaign
from services.common.connect import failure_text, mask_url
from services.common.localtime import MOMENT_FORMS, MomentError, MomentInput, parse_moment
from services.common.logs import configure_logging
from services.common.runtime import run
from services.common.settings import Settings
from services.projector import bootstrap
from services.projector.adapters.metrics import ProjectorMetrics
from services.projector.domain.audit import AuditReport, AuditUnavailable
from services.projector.domain.model import VenueAsOf
from services.projector.domain.ports import Fenced
from services.projector.entrypoints import venue
from services.projector.usecases import WouldLoseEvents
from services.registry import RunnableService, start_operator_server


def _logging(settings: Settings) -> None:
    configure_logging(settings.campaign_file)


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    """The projector until ``stop`` is set, with its ``/metrics`` (``CW_METRICS_PORT``)."""
    metrics = ProjectorMetrics()
    health = start_operator_server(settings, metrics.registry, "projector")
    await bootstrap.run_projector(settings, metrics, stop, health)


PROJECTOR = RunnableService(
    name="projector",
    summary="CW_EVENTS into the read model, exactly once",
    run=serve,
    ensure=bootstrap.ensure_read_model,
    metrics_port=9464,
    # Another projector holds the write lock now; a restart makes this one its standby.
    exits={Fenced: 75},  # EX_TEMPFAIL
)


def _rebuild_progress(applied: int, end: int) -> None:
    share = f" ({applied / end:.0%})" if end else ""
    print(f"rebuild: {applied:,} of {end:,} stream messages applied{share}", file=sys.stderr)


def _rebuild(args: argparse.Namespace) -> int:
    settings = Settings()
    _logging(settings)
    try:
        lines = run(
            bootstrap.rebuild(
                settings, ProjectorMetrics(), _rebuild_progress, accept_loss=args.accept_loss
            )
        )
    except bootstrap.RebuildUnavailable as exc:
        print(f"cw rebuild: {exc}", file=sys.stderr)
        return 2
    except WouldLoseEvents as exc:
        print(f"cw rebuild: {exc} (--accept-loss swaps anyway)", file=sys.stderr)
        return 2
    for line in lines:
        print(line)
    return 0


def _moment(text: str) -> MomentInput:
    try:
        return parse_moment(text)
    except MomentError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _venue(args: argparse.Namespace) -> int:
    settings = Settings()
    campaign = load_campaign(settings.campaign_file)
    zone = campaign.timezone
    try:
        as_of = args.as_of.resolve(zone) if args.as_of else datetime.now(zone)
    except MomentError as exc:
        print(f"cw venue: --as-of: {exc}", file=sys.stderr)
        return 2
    try:
        everywhere = run(bootstrap.venue_as_of(settings, args.venue_id, as_of))
    except asyncpg.UndefinedTableError:
        print("cw venue: the read model does not exist yet: run cw init", file=sys.stderr)
        return 2
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        print(
            f"cw venue: cannot read PostgreSQL at {mask_url(settings.database_url)} "
            f"({failure_text(exc)}); is it running, and is CW_DATABASE_URL right?",
            file=sys.stderr,
        )
        return 2
    district = None if args.district is None else campaign.names.district_code(args.district)
    found = [v for v in everywhere if district in (None, v.district)]
    asked = args.venue_id
    if not found:
        # Not an id: (part of) a venue's name, as a person remembers it.
        try:
            found, matches = run(bootstrap.venue_named(settings, asked, district, as_of))
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            print(f"cw venue: cannot read PostgreSQL ({failure_text(exc)})", file=sys.stderr)
            return 2
        if len(matches) > 1:
            print(_several(asked, matches), file=sys.stderr)
            return 1
        if not found:
            print(_unknown(asked, district, everywhere, campaign.names), file=sys.stderr)
            return 1
        asked = found[0].venue_id
    if args.json:
        doc = venue.as_json(asked, district, found, as_of, zone, names=campaign.names)
        print(json.dumps(doc, ensure_ascii=False, indent=2))
    elif sys.stdout.isatty():
        console = Console()
        for i, one in enumerate(found):
            if i:
                console.print()
            venue.print_table(console, one, as_of, campaign)
    else:
        for i, one in enumerate(found):
            print("\n".join(([""] if i else []) + venue.plain_lines(one, as_of, campaign)))
    return 0


def _several(text: str, matches: list[tuple[str, str, str]]) -> str:
    """``“农贸” 匹配到 3 个场所，请用场所编号 …`` then one line per venue: id, name, district."""
    lines = [
        f"“{text}” 匹配到 {len(matches)} 个场所，请用场所编号（或加 --district）"
        f"({len(matches)} venues match {text!r}: give the venue id, or --district)"
    ]
    lines.extend(f"{venue_id}\t{name}\t{district}" for district, venue_id, name in matches)
    return "\n".join(lines)


def _unknown(venue_id: str, district: str | None, elsewhere: list[VenueAsOf], names: Names) -> str:
    if district is None:
        return (
            f"未找到场所 {venue_id}: 档案中没有它的任何事件，也没有名称含此文字的场所 "
            f"(no event for venue {venue_id} in the archive, and no venue by that name)"
        )
    text = (
        f"未找到场所 {venue_id}（{names.district(district)}）: 档案中没有它的任何事件 "
        f"(no event for venue {venue_id} of district {district} in the archive)"
    )
    if elsewhere:
        here = "、".join(names.district(v.district) for v in elsewhere)
        districts = ", ".join(v.district for v in elsewhere)
        text += f"; 它在{here}有事件 (it has events in district {districts})"
    return text


def _audit(args: argparse.Namespace) -> int:
    try:
        report = run(bootstrap.audit(Settings(), since=args.since))
    except AuditUnavailable as exc:
        print(f"cw audit: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.as_dict(), ensure_ascii=False))
    else:
        print("\n".join(audit_lines(report)))
    return 0 if report.clean else 1


def audit_lines(report: AuditReport, subjects_shown: int = 3) -> list[str]:
    r = report
    # Said first: when the stream is another one, nothing below means what it seems to.
    lines = [] if r.replaced is None else [r.replaced]
    lines += [
        f"CW_EVENTS {r.first_seq}..{r.checkpoint} (the projector's checkpoint): "
        f"{r.checked} messages checked",
        f"  archived       {r.archived}",
        f"  duplicates     {r.duplicates}",
        f"  dead-lettered  {r.dead_lettered}: {r.still_dead_letters} still dead letters, "
        f"{r.replayed} replayed, {r.deleted} deleted",
    ]
    if not r.unaccounted:
        lines.append(
            "every message is accounted for"
            if r.replaced is None
            else "every message this CW_EVENTS holds there is accounted for, but it is another "
            "stream (first line)"
        )
        return lines
    lines.append(f"UNACCOUNTED FOR: {len(r.unaccounted)} messages")
    for g in r.ranges():
        more = len(g.subjects) - subjects_shown
        subjects = ", ".join(g.subjects[:subjects_shown]) + (f" (+{more} more)" if more > 0 else "")
        lines.append(f"  seq {g.seqs} ({g.count}): {g.reason}")
        lines.append(f"      {subjects}")
    return lines


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "rebuild",
        help="replay CW_EVENTS into a fresh read model, then swap it in atomically",
        description="Build a new generation of the read model from CW_EVENTS beside the live "
        "one (the projector keeps running), catch up to the stream's end, then swap the public "
        "views to it in one transaction and drop the old one. Readers see the old or the new "
        "model, never a half-built one. Whoever connects, the generation is made as the "
        "services' role (the owner of schema cw), so the services can use it. Before the swap, "
        "the live archive is compared with the new one by event id: a rebuild from a stream "
        "that lost its history (recreated, restored from an older backup, another server) "
        "would take events out of the views, so it is refused and the new generation dropped "
        "(docs/operations.md).",
        epilog="exit status: 0 the new generation is live; 2 NATS or PostgreSQL could not be "
        "reached, the read model does not exist yet (cw init), CW_DATABASE_URL's user may not "
        "act as the services' role (the owner of schema cw, which owns the generations), "
        "PostgreSQL refused or failed it (said in one line), or the new generation lacks "
        "events of the live one (nothing swapped)",
    )
    p.add_argument(
        "--accept-loss",
        action="store_true",
        help="swap even when the live read model holds events the new generation lacks (they "
        "leave the views; restoring CW_EVENTS from its backup keeps them)",
    )
    p.set_defaults(handler=_rebuild)

    p = sub.add_parser(
        "venue",
        help="a venue's issues (by id or by name), now or as they stood at a past moment",
        description="A venue's issues (status, deadline, who must rectify) as they stood at a "
        "moment, replayed from the archive (the event_archive view), without reading NATS. "
        "The venue is named by its id, or by (part of) its registered name when no venue has "
        "that id (case-insensitive; several matches are listed with id, name and district). "
        "Times are in the campaign's time zone. On a terminal a table, through a pipe one "
        "tab-separated line per issue, with --json one JSON document.",
        epilog="exit status: 0 shown (also a venue without issues); 1 no event of the venue in "
        "the archive and no venue by that name, or several venues by that name (listed); 2 a "
        "bad argument, or PostgreSQL could not be read",
    )
    p.add_argument(
        "venue_id",
        metavar="VENUE",
        help="the venue's id (LY-FM-001) or (part of) its name (墟沟农贸)",
    )
    p.add_argument(
        "--district",
        metavar="D",
        help="district code or name, when venue ids repeat across districts",
    )
    p.add_argument(
        "--as-of",
        type=_moment,
        metavar="T",
        help=f"the moment (default: now): {MOMENT_FORMS}; local times are the campaign's zone",
    )
    p.add_argument("--json", action="store_true", help="one JSON document, for programs")
    p.set_defaults(handler=_venue)

    p = sub.add_parser(
        "audit",
        help="check that every message of CW_EVENTS up to the checkpoint is accounted for",
        description="First check that CW_EVENTS is the stream the read model followed (each "
        "partition's checkpoint recorded the id of the message there): when it is another "
        "stream of that name (recreated, restored from an older backup, another server), say so "
        "in the first line with what to do. Then account for every message of CW_EVENTS up to "
        "the projector's checkpoint, by event id: its event is in the archive at that sequence, "
        "or it is a recorded duplicate of an archived event, or it was dead-lettered and the "
        "dead letter is still kept or an operator's replay or delete is recorded "
        "(cw.dead_letter_actions). Prints a summary and what is unaccounted for; a message "
        "where the archive holds another event is one.",
        epilog="exit status: 0 everything is accounted for; 1 something is not, or CW_EVENTS is "
        "not the stream the read model followed; 2 NATS or PostgreSQL could not be read",
    )
    p.add_argument("--since", type=int, default=1, metavar="SEQ", help="first stream sequence")
    p.add_argument("--json", action="store_true", help="one JSON document, for programs")
    p.set_defaults(handler=_audit)
