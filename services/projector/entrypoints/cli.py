"""The projector's entrypoints, thin shells over the bootstrap: its line in the registry of
services (``cw run projector``, ``cw init``, ``cw dev``), and ``cw rebuild``, ``cw venue`` and
``cw audit``."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from datetime import UTC, datetime

from services.common.runtime import run
from services.common.settings import Settings
from services.projector import bootstrap
from services.projector.adapters.metrics import ProjectorMetrics
from services.projector.domain.audit import AuditReport, AuditUnavailable
from services.projector.domain.ports import Fenced
from services.registry import RunnableService, start_metrics_server

STATUS_ZH = {"open": "待整改", "rectifying": "整改中", "overdue": "已逾期", "closed": "已销号"}


def _logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    """The projector until ``stop`` is set, with its ``/metrics`` (``CW_METRICS_PORT``)."""
    metrics = ProjectorMetrics()
    url = start_metrics_server(settings, metrics.registry, "projector")
    if url is not None:
        logging.getLogger("cw.projector").info("metrics on %s", url)
    await bootstrap.run_projector(settings, metrics, stop)


PROJECTOR = RunnableService(
    name="projector",
    summary="CW_EVENTS into the read model, exactly once",
    run=serve,
    ensure=bootstrap.ensure_read_model,
    metrics_port=9464,
    # Another projector holds the write lock now; a restart makes this one its standby.
    exits={Fenced: 75},  # EX_TEMPFAIL
)


def _rebuild(args: argparse.Namespace) -> int:
    _logging()
    try:
        lines = run(bootstrap.rebuild(Settings(), ProjectorMetrics()))
    except bootstrap.RebuildUnavailable as exc:
        print(f"cw rebuild: {exc}", file=sys.stderr)
        return 2
    for line in lines:
        print(line)
    return 0


def _parse_moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs an offset, e.g. 2023-04-01T00:00+08:00")
    return moment


def _venue(args: argparse.Namespace) -> int:
    as_of: datetime = args.as_of or datetime.now(UTC)
    rows = run(bootstrap.venue_as_of(Settings(), args.venue_id, args.district, as_of))
    print(f"场所 {args.venue_id} 截至 {as_of.isoformat()}: {len(rows)} 个问题")
    if not rows:
        return 0
    header = ("issue_id", "phase", "item_code", "severity", "status", "found_at", "due_at",
              "closed_at", "rebound")  # fmt: skip
    print("\t".join(header))
    for issue, status in rows:
        print(
            "\t".join(
                str(x)
                for x in (
                    issue.issue_id, issue.phase, issue.item_code, issue.severity,
                    f"{status}({STATUS_ZH[status]})", issue.found_at.isoformat(),
                    issue.due_at.isoformat() if issue.due_at else "-",
                    issue.closed_at.isoformat() if issue.closed_at else "-",
                    "反弹" if issue.rebound else "-",
                )
            )
        )  # fmt: skip
    return 0


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
    lines = [
        f"CW_EVENTS {r.first_seq}..{r.checkpoint} (the projector's checkpoint): "
        f"{r.checked} messages checked",
        f"  archived       {r.archived}",
        f"  duplicates     {r.duplicates}",
        f"  dead-lettered  {r.dead_lettered}: {r.still_dead_letters} still dead letters, "
        f"{r.replayed} replayed, {r.deleted} deleted",
    ]
    if r.clean:
        lines.append("every message is accounted for")
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
        "model, never a half-built one.",
        epilog="exit status: 0 the new generation is live; 2 NATS or PostgreSQL could not be "
        "reached, or the read model does not exist yet (cw init)",
    )
    p.set_defaults(handler=_rebuild)

    p = sub.add_parser(
        "venue",
        help="a venue's issues, now or as they stood at a past moment",
        description="A venue's issues, replayed from the read model's event archive (not from "
        "NATS): now, or as they stood at --as-of.",
    )
    p.add_argument("venue_id", metavar="VENUE_ID", help="the venue, e.g. LY-MALL-001")
    p.add_argument("--district", help="district code, when venue ids repeat across districts")
    p.add_argument(
        "--as-of", type=_parse_moment, help="RFC 3339 moment, e.g. 2023-04-01T00:00+08:00"
    )
    p.set_defaults(handler=_venue)

    p = sub.add_parser(
        "audit",
        help="check that every message of CW_EVENTS up to the checkpoint is accounted for",
        description="Account for every message of CW_EVENTS up to the projector's checkpoint: "
        "its event is in the archive, or it is a recorded duplicate of an archived event, or it "
        "was dead-lettered and the dead letter is still kept or an operator's replay or delete "
        "is recorded (cw.dead_letter_actions). Prints a summary and what is unaccounted for.",
        epilog="exit status: 0 everything is accounted for; 1 something is not; 2 NATS or "
        "PostgreSQL could not be read",
    )
    p.add_argument("--since", type=int, default=1, metavar="SEQ", help="first stream sequence")
    p.add_argument("--json", action="store_true", help="one JSON document, for programs")
    p.set_defaults(handler=_audit)
