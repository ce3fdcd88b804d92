"""The bureau's numbers as gauges: what the views say, cached for 15 s, from the writer only."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from services.common.campaign import load_campaign
from services.projector.adapters.gauges import DomainGauges, WaitingGauges
from services.projector.adapters.generations import active_schema
from services.projector.adapters.read_model import PostgresReadModel
from services.projector.adapters.rebuild_progress import RebuildProgress
from services.projector.adapters.rebuilds import PostgresGenerations
from tests import factories as f
from tests.integration.conftest import Harness

pytestmark = pytest.mark.integration

CHECKLIST = [i.code for i in load_campaign().names.checklist]
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(registry: CollectorRegistry) -> Samples:
    # As the metrics server does: in a thread of its own, while the event loop goes on.
    text = (await asyncio.to_thread(generate_latest, registry)).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def place(phase: str, kind: str, **more: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted({"district": "320703", "phase": phase, "venue_kind": kind, **more}.items()))


@pytest.fixture
async def pool(harness: Harness) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(harness.settings.database_url, min_size=0, max_size=2)
    assert p is not None
    yield p
    await p.close()


async def campaign(harness: Harness) -> None:
    m, u = "LY-FM-001", "LY-FM-404"  # a registered market; a venue never registered
    await harness.publish(
        [
            f.venue(m, f.at("2023-02-01 09:00")),
            f.inspection(m, f.at("2023-02-10 09:00"), kind="self_check"),
            f.inspection(m, f.at("2023-03-01 09:00"), kind="supervision"),
            f.inspection(m, f.at("2023-03-20 09:00"), kind="look_back"),
            f.inspection(u, f.at("2023-03-21 09:00"), kind="look_back"),
            f.issue(m, "I-1", f.at("2023-03-01 10:00")),  # open: no deadline
            f.issue(m, "I-2", f.at("2023-03-01 10:05"), item_code="FM-PUB"),
            f.due(m, "I-2", f.at("2023-03-01 11:00"), f.at("2023-03-10 18:00")),  # overdue
            f.issue(m, "I-3", f.at("2023-03-02 10:00"), item_code="FM-WC"),
            f.due(m, "I-3", f.at("2023-03-02 11:00"), f.at("2023-03-12 18:00")),
            f.recheck_passed(m, "I-3", f.at("2023-03-11 10:00")),  # closed on time
            f.issue(m, "I-4", f.at("2023-03-03 10:00"), item_code="FM-ZONE"),
            f.due(m, "I-4", f.at("2023-03-03 11:00"), f.at("2023-03-05 18:00")),
            f.recheck_passed(m, "I-4", f.at("2023-03-08 10:00")),  # closed late
            f.issue(m, "I-5", f.at("2023-06-02 10:00"), item_code="FM-WC"),  # a rebound of I-3
            f.issue(u, "I-9", f.at("2023-03-04 10:00")),
        ]
    )
    await harness.project()


async def test_the_gauges_say_what_the_views_say(harness: Harness, pool: asyncpg.Pool) -> None:
    await campaign(harness)
    registry = CollectorRegistry()
    registry.register(
        DomainGauges(pool, asyncio.get_running_loop(), serving=lambda: True, checklist=CHECKLIST)
    )
    got = await scrape(registry)
    market, unregistered = "farmers_market", "unregistered"
    assert got[("cw_issues", place("re_review", market, status="open"))] == 1
    assert got[("cw_issues", place("re_review", market, status="overdue"))] == 1
    assert got[("cw_issues", place("re_review", market, status="closed"))] == 2
    assert got[("cw_issues", place("long_term", market, status="open"))] == 1
    assert got[("cw_issues", place("re_review", unregistered, status="open"))] == 1
    assert got[("cw_issues_closed_on_time", place("re_review", market))] == 1
    assert got[("cw_rebounds", place("long_term", market))] == 1
    assert got[("cw_rebounds", place("re_review", market))] == 0
    assert got[("cw_venues", (("district", "320703"), ("venue_kind", market)))] == 1

    def inspections(phase: str, kind: str) -> float:
        labels = {"district": "320703", "phase": phase, "inspection_kind": kind}
        return got[("cw_inspections", tuple(sorted(labels.items())))]

    assert inspections("self_check", "self_check") == 1
    assert inspections("self_check", "supervision") == 0
    assert inspections("re_review", "supervision") == 1
    assert inspections("re_review", "look_back") == 2  # the unregistered venue's too
    assert inspections("long_term", "look_back") == 0  # coverage rows: zeros, not gaps
    assert got[("cw_venues", (("district", "320703"), ("venue_kind", unregistered)))] == 1
    # The same totals as the views, and no venue, issue or person anywhere in a label.
    assert sum(v for (name, _), v in got.items() if name == "cw_issues") == 6
    assert got[("cw_unknown_item_codes", ())] == 0  # every code is the checklist's
    labels = {k for (_, pairs) in got for k, _ in pairs}
    assert labels == {"district", "phase", "venue_kind", "status", "inspection_kind"}


async def test_item_codes_the_checklist_does_not_list_are_counted_not_labelled(
    harness: Harness, pool: asyncpg.Pool
) -> None:
    await campaign(harness)
    await harness.publish([
        f.issue("LY-FM-001", "I-6", f.at("2023-03-05 10:00"), item_code="FM-NEW"),
        f.issue("LY-FM-404", "I-7", f.at("2023-03-05 10:00"), item_code="FM-NEW"),
        f.issue("LY-FM-001", "I-8", f.at("2023-03-05 10:00"), item_code="FM-OTHER"),
    ])  # fmt: skip
    await harness.project()
    registry = CollectorRegistry()
    registry.register(DomainGauges(pool, asyncio.get_running_loop(), serving=lambda: True,
                                   checklist=CHECKLIST))  # fmt: skip
    got = await scrape(registry)
    # Projected all the same (9 issues), and two distinct unknown codes, with no label.
    assert sum(v for (name, _), v in got.items() if name == "cw_issues") == 9
    assert got[("cw_unknown_item_codes", ())] == 2


async def test_a_scrape_within_15_s_is_served_from_the_cache(
    harness: Harness, pool: asyncpg.Pool
) -> None:
    await campaign(harness)
    registry = CollectorRegistry()
    registry.register(
        DomainGauges(pool, asyncio.get_running_loop(), serving=lambda: True, checklist=CHECKLIST)
    )
    before = await scrape(registry)
    await harness.publish([f.issue("LY-FM-001", "I-6", f.at("2023-03-20 10:00"))])
    await harness.project()
    assert await scrape(registry) == before
    fresh = CollectorRegistry()
    fresh.register(
        DomainGauges(
            pool, asyncio.get_running_loop(), serving=lambda: True, checklist=CHECKLIST, max_age_s=0
        )
    )
    key = ("cw_issues", place("re_review", "farmers_market", status="open"))
    assert (await scrape(fresh))[key] == before[key] + 1


async def test_a_standby_serves_no_domain_gauges(harness: Harness, pool: asyncpg.Pool) -> None:
    await campaign(harness)
    holding = False
    registry = CollectorRegistry()
    registry.register(
        DomainGauges(
            pool,
            asyncio.get_running_loop(),
            serving=lambda: holding,
            checklist=CHECKLIST,
            max_age_s=0,
        )
    )
    assert await scrape(registry) == {}
    holding = True
    assert any(name == "cw_issues" for name, _ in await scrape(registry))


async def test_a_rebuild_in_progress_shows_how_far_it_has_got(
    harness: Harness, pool: asyncpg.Pool
) -> None:
    await campaign(harness)
    registry = CollectorRegistry()
    registry.register(
        RebuildProgress(pool, asyncio.get_running_loop(), serving=lambda: True, max_age_s=0)
    )
    assert await scrape(registry) == {}  # no rebuild: no series
    generation = await PostgresGenerations(pool).create()  # what cw rebuild starts with
    async with PostgresReadModel(pool, schema=generation.name).unit() as unit:
        await unit.set_checkpoint(7)
    got = await scrape(registry)
    assert got == {("cw_rebuild_checkpoint_seq", (("generation", str(generation.number)),)): 7}


async def test_follow_ups_waiting_for_their_issue_found_are_counted_without_a_label(
    harness: Harness, pool: asyncpg.Pool
) -> None:
    m = "LY-FM-001"
    await harness.publish(
        [
            f.due(m, "I-LOST", f.at("2023-03-01 11:00"), f.at("2023-03-10 18:00")),
            f.recheck_passed(m, "I-LOST", f.at("2023-03-09 10:00")),
            f.due(m, "I-LATE", f.at("2023-03-02 11:00"), f.at("2023-03-10 18:00")),
            f.issue(m, "I-FOUND", f.at("2023-03-01 10:00")),
        ]
    )
    await harness.project()
    # The first two have waited 4 days (as if taken then), the third just now.
    schema = await active_schema(harness.db)
    await harness.db.execute(
        f"UPDATE {schema}.pending_issue_events SET waiting_since = now() - interval '4 days' "
        "WHERE issue_id = 'I-LOST'"
    )
    registry = CollectorRegistry()
    registry.register(
        WaitingGauges(
            pool,
            asyncio.get_running_loop(),
            serving=lambda: True,
            alert_after=timedelta(days=3),
        )
    )
    got = await scrape(registry)
    assert got[("cw_projector_waiting_follow_ups", ())] == 3
    assert got[("cw_projector_waiting_follow_ups_stale", ())] == 2
    assert got[("cw_projector_waiting_alert_after_seconds", ())] == 3 * 86400
    oldest = got[("cw_projector_waiting_follow_ups_oldest_seconds", ())]
    assert 4 * 86400 <= oldest < 4 * 86400 + 600
