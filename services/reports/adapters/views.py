"""The facts, read from the public views only (what the read-only role ``cw_reader`` may read),
and, for a past moment, the archive (``public.event_archive``) replayed by the projection's own
rules into memory.

Why replay in memory rather than compute from ``event_archive`` in SQL: the lifecycle (waiting
follow-ups, the first report standing, a closed issue staying closed, rebounds) is written once,
in Python (``services.common.lifecycle`` and the projection); a second copy in SQL would drift.
One district's archive (a few thousand events a month) replays in well under a second.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from datetime import datetime, time
from typing import Any

import asyncpg

from contracts import decode_event
from services.common.campaign import Campaign
from services.projector.domain.model import Snapshot, StreamEvent, VenuePhaseCounts
from services.projector.domain.projection import project
from services.reports.domain.model import (
    Facts,
    IssueFact,
    VenueFact,
    VenuePhaseFact,
    WaitingFact,
)

NOW = "SELECT now()"
VENUES = """
SELECT district, venue_id, name, kind, street, first_responsible_name, first_responsible_phone,
       officer_name, officer_phone
FROM public.venues WHERE $1::text IS NULL OR district = $1
"""
ISSUES = """
SELECT district, issue_id, venue_id, phase, item_code, severity, status, found_at, due_at,
       original_due_at, extensions, order_no, assignee, closed_at, closed_on_time,
       closed_on_time_original, rebound
FROM public.issue_status WHERE $1::text IS NULL OR district = $1
"""
VENUE_PHASES = """
SELECT district, venue_id, venue_kind, phase, inspections, inspections_self_check,
       inspections_supervision, inspections_look_back, inspections_re_review, items_checked,
       items_failed, issues_found, issues_open, issues_overdue, issues_closed, closed_on_time,
       rebounds
FROM public.venue_phase_summary WHERE $1::text IS NULL OR district = $1
"""
WAITING = """
SELECT district, venue_id, issue_id, event_type, event_id::text AS event_id, occurred_at,
       waiting_since
FROM public.waiting_follow_ups WHERE $1::text IS NULL OR district = $1
"""
HISTORY = """
SELECT stream_seq, subject, phase, payload::text AS payload FROM public.event_archive
WHERE ($1::text IS NULL OR district = $1) AND occurred_at <= $2
ORDER BY stream_seq
"""

UNREADABLE_GENERATIONS = """
SELECT n.nspname::text AS generation, pg_get_userbyid(n.nspowner)::text AS owner,
       pg_get_userbyid(v.relowner)::text AS views_owner
FROM pg_class v CROSS JOIN pg_namespace n
WHERE v.oid = 'public.venues'::regclass
  AND n.nspname ~ '^cw_rm_[0-9]+$'
  AND NOT has_schema_privilege(v.relowner, n.oid, 'USAGE')
ORDER BY n.nspname DESC
"""
"""Generations the views' owner may not read (the views run with its rights): one another role
made. Only catalogs, which every role may read."""


async def refused_behind_the_views(conn: asyncpg.Connection) -> str | None:
    """Why reading the views is refused whoever reads them, when it is behind them: a generation
    their owner may not read. ``None``: not that."""
    row = await conn.fetchrow(UNREADABLE_GENERATIONS)
    if row is None:
        return None
    return (
        f"their owner {row['views_owner']} may not read the generation {row['generation']}, "
        f"which belongs to {row['owner']} (a command run as {row['owner']} made it): cw db "
        "setup (as an administrator) hands it over"
    )


def _rows(cls: Any, records: Sequence[asyncpg.Record]) -> tuple[Any, ...]:
    return tuple(cls(**dict(r.items())) for r in records)


async def registered_venues(conn: asyncpg.Connection, district: str | None) -> list[VenueFact]:
    """``cw venues``: the rows of the ``venues`` view (one district's, or all)."""
    return list(_rows(VenueFact, await conn.fetch(VENUES, district)))


class ViewsSource:
    """``FactsSource`` on one connection (as ``cw_reader``), each read in one snapshot."""

    def __init__(self, conn: asyncpg.Connection, campaign: Campaign) -> None:
        self._conn = conn
        self._campaign = campaign

    async def now(self, district: str | None) -> Facts:
        # One snapshot: the three views agree with each other and with the moment.
        async with self._conn.transaction(isolation="repeatable_read", readonly=True):
            moment = await self._conn.fetchval(NOW)
            return Facts(
                as_of=moment,
                district=district,
                venues=_rows(VenueFact, await self._conn.fetch(VENUES, district)),
                issues=_rows(IssueFact, await self._conn.fetch(ISSUES, district)),
                venue_phases=_rows(VenuePhaseFact, await self._conn.fetch(VENUE_PHASES, district)),
                waiting=_rows(WaitingFact, await self._conn.fetch(WAITING, district)),
                checklist=frozenset(i.code for i in self._campaign.names.checklist),
            )

    async def as_of(self, district: str | None, moment: datetime) -> Facts:
        rows = await self._conn.fetch(HISTORY, district, moment)
        history = [
            StreamEvent(
                seq=r["stream_seq"], event=decode_event(r["payload"].encode()),
                raw=r["payload"].encode(), subject=r["subject"], phase=r["phase"],
            )
            for r in rows
        ]  # fmt: skip
        return replayed(history, moment, district, self._campaign)


def replayed(
    history: Sequence[StreamEvent], moment: datetime, district: str | None, campaign: Campaign
) -> Facts:
    """The facts as they stood at ``moment``: the events that had happened by then (all given),
    replayed; the same columns as the views, with coverage of the phases started by then (of
    the venues registered before each phase ended)."""
    happened = [se for se in history if se.event.occurred_at <= moment]
    changes = project(Snapshot(), happened, campaign.rebound_window)
    venues = tuple(
        VenueFact(
            district=v.district, venue_id=v.venue_id, name=v.name, kind=v.kind, street=v.street,
            first_responsible_name=v.first_responsible_name,
            first_responsible_phone=v.first_responsible_phone,
            officer_name=v.officer_name, officer_phone=v.officer_phone,
        )
        for v in changes.venues.values()
    )  # fmt: skip
    kinds = {(v.district, v.venue_id): v.kind for v in venues}
    issues = tuple(
        IssueFact(
            district=i.district, issue_id=i.issue_id, venue_id=i.venue_id, phase=i.phase,
            item_code=i.item_code, severity=i.severity, status=i.status(moment),
            found_at=i.found_at, due_at=i.due_at, original_due_at=i.original_due_at,
            extensions=i.extensions, order_no=i.order_no, assignee=i.assignee,
            closed_at=i.closed_at, closed_on_time=i.closed_on_time,
            closed_on_time_original=i.closed_on_time_original, rebound=i.rebound,
        )
        for i in changes.issues.values()
    )  # fmt: skip
    open_: dict[tuple[str, str, str], list[int]] = {}
    for i in issues:
        if i.status != "closed":
            n = open_.setdefault((i.district, i.venue_id, i.phase), [0, 0])
            n[0] += 1
            n[1] += int(i.status == "overdue")
    places = dict(changes.counts)
    for phase in campaign.phases:
        starts = datetime.combine(phase.start, time.min, campaign.timezone)
        ends = (
            None if phase.end is None else datetime.combine(phase.end, time.min, campaign.timezone)
        )
        if starts <= moment:
            for v in changes.venues.values():  # those registered before the phase ended
                if ends is None or v.registered_at < ends:
                    places.setdefault((v.district, v.venue_id, phase.name), VenuePhaseCounts())
    venue_phases = tuple(
        VenuePhaseFact(
            district=d, venue_id=venue_id, venue_kind=kinds.get((d, venue_id), "unregistered"),
            phase=phase, issues_open=open_.get((d, venue_id, phase), [0, 0])[0],
            issues_overdue=open_.get((d, venue_id, phase), [0, 0])[1],
            **{
                f.name: getattr(n, f.name)
                for f in fields(VenuePhaseCounts)
                if f.name not in ("last_inspected_at", "recheck_failures")
            },
        )
        for (d, venue_id, phase), n in places.items()
    )  # fmt: skip

    def mine(d: str) -> bool:
        return district is None or d == district

    return Facts(
        as_of=moment,
        district=district,
        venues=tuple(v for v in venues if mine(v.district)),
        issues=tuple(i for i in issues if mine(i.district)),
        venue_phases=tuple(r for r in venue_phases if mine(r.district)),
        checklist=frozenset(i.code for i in campaign.names.checklist),
    )
