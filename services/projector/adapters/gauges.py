"""The bureau's numbers as Prometheus gauges, read from the public views at scrape time.

Served by the projector that holds the write lock only: a hot standby yields no series, so a
sum over every projector never counts an issue twice. A scrape reads the views at most once per
``max_age`` (15 s); scrapes in between get the cached figures. The status of an issue is the
views' own (``issue_status.status`` against the database clock), so Grafana's tables and these
gauges agree. Labels are district, phase, venue kind, status and inspection kind: never a venue,
issue, order or person (nor an item code: ``cw_unknown_item_codes`` is one number).
"""

from __future__ import annotations

import abc
import asyncio
import logging
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Generic, TypeVar

import asyncpg
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger("cw.projector.gauges")
T = TypeVar("T")

ISSUES = """
SELECT i.district, i.phase, COALESCE(v.kind, 'unregistered') AS venue_kind, i.status,
       count(*)::bigint AS issues,
       (count(*) FILTER (WHERE i.status = 'closed' AND i.closed_on_time))::bigint AS on_time,
       (count(*) FILTER (WHERE i.rebound))::bigint AS rebounds
FROM public.issue_status i
LEFT JOIN public.venues v ON v.district = i.district AND v.venue_id = i.venue_id
GROUP BY 1, 2, 3, 4
"""
# A venue counts once: registered with its kind, or seen in a phase before its registration.
VENUES = """
SELECT district, venue_kind, count(*)::bigint AS venues
FROM (
    SELECT district, venue_id, kind AS venue_kind FROM public.venues
    UNION
    SELECT DISTINCT district, venue_id, venue_kind FROM public.venue_phase_summary
    WHERE venue_kind = 'unregistered'
) known
GROUP BY 1, 2
"""
INSPECTIONS = """
SELECT district, phase,
       sum(inspections_self_check)::bigint AS self_check,
       sum(inspections_supervision)::bigint AS supervision,
       sum(inspections_look_back)::bigint AS look_back,
       sum(inspections_re_review)::bigint AS re_review
FROM public.district_phase_summary
GROUP BY 1, 2
"""
# The distinct item codes issues name that the campaign's checklist does not list.
UNKNOWN_ITEM_CODES = """
SELECT count(DISTINCT item_code)::bigint FROM public.issue_status
WHERE item_code <> ALL($1::text[])
"""
INSPECTION_KINDS = ("self_check", "supervision", "look_back", "re_review")
PLACE = ("district", "phase", "venue_kind")


@dataclass(frozen=True)
class Figures:
    issues: Sequence[asyncpg.Record]
    venues: Sequence[asyncpg.Record]
    inspections: Sequence[asyncpg.Record] = ()
    unknown_item_codes: int | None = None


async def read_figures(pool: asyncpg.Pool, checklist: Collection[str] = ()) -> Figures:
    """The figures; ``checklist``: the item codes the campaign lists (the others are unknown)."""
    async with pool.acquire() as conn, conn.transaction(readonly=True):
        return Figures(
            await conn.fetch(ISSUES),
            await conn.fetch(VENUES),
            await conn.fetch(INSPECTIONS),
            await conn.fetchval(UNKNOWN_ITEM_CODES, sorted(checklist)),
        )


def families(figures: Figures) -> list[GaugeMetricFamily]:
    issues = GaugeMetricFamily(
        "cw_issues",
        "Issues by district, phase, venue kind and status (open, rectifying, overdue, closed), "
        "as the issue_status view computes them now.",
        labels=[*PLACE, "status"],
    )
    on_time = GaugeMetricFamily(
        "cw_issues_closed_on_time",
        "Closed issues whose recheck passed by the deadline in force at that moment.",
        labels=list(PLACE),
    )
    rebounds = GaugeMetricFamily(
        "cw_rebounds", "Issues marked as rebounds (反复反弹).", labels=list(PLACE)
    )
    venues = GaugeMetricFamily(
        "cw_venues", "Venues known, by district and kind.", labels=["district", "venue_kind"]
    )
    inspections = GaugeMetricFamily(
        "cw_inspections",
        "Inspections by district, phase and kind (self_check, supervision, look_back 回头看, "
        "re_review).",
        labels=["district", "phase", "inspection_kind"],
    )
    closed: dict[tuple[str, ...], float] = {}
    rebound: dict[tuple[str, ...], float] = {}
    for row in figures.issues:
        place: tuple[str, ...] = (row["district"], row["phase"], row["venue_kind"])
        issues.add_metric([*place, row["status"]], row["issues"])
        closed[place] = closed.get(place, 0) + row["on_time"]
        rebound[place] = rebound.get(place, 0) + row["rebounds"]
    for place, count in sorted(closed.items()):
        on_time.add_metric(list(place), count)
    for place, count in sorted(rebound.items()):
        rebounds.add_metric(list(place), count)
    for row in figures.venues:
        venues.add_metric([row["district"], row["venue_kind"]], row["venues"])
    for row in figures.inspections:
        for kind in INSPECTION_KINDS:
            inspections.add_metric([row["district"], row["phase"], kind], row[kind])
    found = [issues, on_time, rebounds, venues, inspections]
    if figures.unknown_item_codes is not None:
        unknown = GaugeMetricFamily(
            "cw_unknown_item_codes",
            "Distinct item codes issues name that the campaign's checklist does not list "
            "(cw report unknown-items names them).",
        )
        unknown.add_metric([], figures.unknown_item_codes)
        found.append(unknown)
    return found


class ReadAtScrape(Collector, abc.ABC, Generic[T]):
    """Figures read from PostgreSQL when Prometheus scrapes, at most once per ``max_age_s``,
    served only while ``serving()`` (the write lock is held). ``collect`` runs in the metrics
    server's thread and reads through the service's own event loop and pool."""

    what = "figures"
    """Named in the log when they cannot be read."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        loop: asyncio.AbstractEventLoop,
        *,
        serving: Callable[[], bool],
        max_age_s: float = 15.0,
        timeout_s: float = 10.0,
    ) -> None:
        self._pool = pool
        self._loop = loop
        self._serving = serving
        self._max_age_s = max_age_s
        self._timeout_s = timeout_s
        self._figures: T | None = None
        self._read_at = -float("inf")

    @abc.abstractmethod
    async def read(self, pool: asyncpg.Pool) -> T: ...

    @abc.abstractmethod
    def families(self, figures: T) -> list[GaugeMetricFamily]: ...

    def describe(self) -> list[GaugeMetricFamily]:
        # Registering must not query the database.
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if not self._serving():
            return iter(())
        if time.monotonic() - self._read_at >= self._max_age_s:
            future = asyncio.run_coroutine_threadsafe(self.read(self._pool), self._loop)
            try:
                self._figures = future.result(self._timeout_s)
            except Exception:
                future.cancel()
                # Stale figures are worse than none: a gap in the graph shows the outage.
                log.warning("%s could not be read", self.what, exc_info=True)
                self._figures = None
            self._read_at = time.monotonic()
        return iter(self.families(self._figures) if self._figures is not None else ())


class DomainGauges(ReadAtScrape[Figures]):
    """The bureau's numbers (module docstring); ``checklist``: the item codes the campaign's
    checklist lists."""

    what = "domain gauges: the read model"

    def __init__(
        self,
        pool: asyncpg.Pool,
        loop: asyncio.AbstractEventLoop,
        *,
        serving: Callable[[], bool],
        checklist: Collection[str],
        max_age_s: float = 15.0,
        timeout_s: float = 10.0,
    ) -> None:
        super().__init__(pool, loop, serving=serving, max_age_s=max_age_s, timeout_s=timeout_s)
        self._checklist = frozenset(checklist)

    async def read(self, pool: asyncpg.Pool) -> Figures:
        return await read_figures(pool, self._checklist)

    def families(self, figures: Figures) -> list[GaugeMetricFamily]:
        return families(figures)


# One row however many wait: the count, the oldest, and those past the campaign's threshold.
WAITING = """
SELECT count(*)::bigint AS waiting,
       COALESCE(EXTRACT(EPOCH FROM now() - min(waiting_since)), 0)::double precision AS oldest_s,
       (count(*) FILTER (WHERE waiting_since < now() - $1::interval))::bigint AS stale
FROM public.waiting_follow_ups
"""


@dataclass(frozen=True)
class Waiting:
    waiting: int
    oldest_s: float
    stale: int
    alert_after: timedelta


class WaitingGauges(ReadAtScrape[Waiting]):
    """Follow-ups (RectificationDue, RecheckPassed …) waiting for their IssueFound: how many,
    the oldest's age, and how many have waited longer than the campaign's
    ``waiting_alert_after``. No label: which ones is ``cw report waiting``'s to say."""

    what = "waiting follow-ups: the read model"

    def __init__(
        self,
        pool: asyncpg.Pool,
        loop: asyncio.AbstractEventLoop,
        *,
        serving: Callable[[], bool],
        alert_after: timedelta,
    ) -> None:
        super().__init__(pool, loop, serving=serving)
        self._alert_after = alert_after

    async def read(self, pool: asyncpg.Pool) -> Waiting:
        async with pool.acquire() as conn, conn.transaction(readonly=True):
            row = await conn.fetchrow(WAITING, self._alert_after)
        assert row is not None
        return Waiting(row["waiting"], row["oldest_s"], row["stale"], self._alert_after)

    def families(self, figures: Waiting) -> list[GaugeMetricFamily]:
        return [
            GaugeMetricFamily(
                "cw_projector_waiting_follow_ups",
                "Follow-ups (RectificationDue, RecheckFailed, RecheckPassed) kept until their "
                "IssueFound arrives (cw report waiting).",
                value=figures.waiting,
            ),
            GaugeMetricFamily(
                "cw_projector_waiting_follow_ups_oldest_seconds",
                "How long the follow-up waiting longest has waited for its IssueFound (0: none "
                "waits).",
                value=figures.oldest_s,
            ),
            GaugeMetricFamily(
                "cw_projector_waiting_follow_ups_stale",
                "Follow-ups that have waited longer than the campaign's waiting_alert_after "
                "([rules]) for their IssueFound.",
                value=figures.stale,
            ),
            GaugeMetricFamily(
                "cw_projector_waiting_alert_after_seconds",
                "The campaign's waiting_alert_after ([rules], default 3d).",
                value=figures.alert_after.total_seconds(),
            ),
        ]
