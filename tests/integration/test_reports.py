"""``cw report`` against PostgreSQL as the read-only role: the views now, and the archive
replayed as of a moment, give the same reports."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from pydantic import SecretStr

from services.common.campaign import load_campaign
from services.common.entrypoints import initialise
from services.common.overdue import days_overdue
from services.common.settings import Settings
from services.projector.adapters.generations import active_schema
from services.reports import bootstrap
from services.reports.domain.reports import REPORTS
from tests import factories as f
from tests.integration.conftest import Harness
from tests.unit.test_overdue import CASES as OVERDUE_CASES
from tests.unit.test_overdue import DUE

pytestmark = pytest.mark.integration

PASSWORD = "report-Pw-1"
CAMPAIGN = load_campaign()


def as_role(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    netloc = f"{user}:{password}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


@pytest.fixture
async def reader(harness: Harness) -> AsyncIterator[Settings]:
    """The harness's settings, reading as a read-only role of this test's own (roles are shared
    by the whole cluster)."""
    role = f"cw_reader_{uuid.uuid4().hex[:8]}"
    settings = harness.settings.model_copy(
        update={"reader_role": role, "reader_password": SecretStr(PASSWORD)}
    )
    await initialise(settings)
    yield settings.model_copy(
        update={"reader_database_url": as_role(settings.database_url, role, PASSWORD)}
    )
    await harness.db.execute(f"DROP OWNED BY {role}")
    await harness.db.execute(f"DROP ROLE {role}")


async def _campaign(harness: Harness) -> None:
    m = "LY-FM-001"
    market = {
        "name": "墟沟农贸市场", "kind": "farmers_market", "street": "墟沟街道",
        "first_responsible": {"name": "王建国", "phone": "13800000001"},
        "officer": {"name": "刘洋", "phone": "0518-82310103"},
    }  # fmt: skip
    await harness.publish([
        f.event("VenueRegistered", m, f.at("2023-02-01 09:00"), market),
        f.venue("LY-MS-002", f.at("2023-02-01 09:00"), kind="mall_supermarket"),
        f.issue(m, "I0", f.at("2023-02-10 10:00"), item_code="FM-WC"),
        f.recheck_passed(m, "I0", f.at("2023-02-20 10:00")),
        f.inspection(m, f.at("2023-03-02 09:00"), items_checked=8, items_failed=2),
        f.issue(m, "I1", f.at("2023-03-02 10:00")),
        f.due(m, "I1", f.at("2023-03-02 11:00"), f.at("2023-03-10 18:00"), order_no="ZG-1"),
        f.issue(m, "I2", f.at("2023-03-02 10:30"), item_code="FM-PUB"),
        f.due(m, "I2", f.at("2023-03-02 11:00"), f.at("2023-03-05 18:00"), order_no="ZG-2"),
        f.due(m, "I2", f.at("2023-03-05 11:00"), f.at("2023-03-12 18:00"), order_no="ZG-2"),
        f.recheck_passed(m, "I2", f.at("2023-03-08 10:00")),
        f.issue(m, "I3", f.at("2023-03-03 10:00"), item_code="FM-WC"),
        f.issue("LY-X-9", "I4", f.at("2023-03-04 10:00")),
        f.issue("LY-X-9", "I5", f.at("2023-03-04 11:00"), item_code="FM-NEW"),  # not listed
        f.venue("M7", f.at("2023-02-01 09:00"), district="320706"),
    ])  # fmt: skip
    await harness.project()


async def test_the_reports_read_the_views_as_the_read_only_role(
    harness: Harness, reader: Settings
) -> None:
    await _campaign(harness)
    facts, reports = await bootstrap.reports(reader, CAMPAIGN, REPORTS, "320703", None)
    by_name = {r.name: r for r in reports}
    (late,) = by_name["overdue"].rows
    keys = (
        "venue", "order_no", "due_at", "first_responsible_name", "first_responsible_phone",
        "officer_name", "officer_phone",
    )  # fmt: skip
    assert {k: late[k] for k in keys} == {
        "venue": "墟沟农贸市场", "order_no": "ZG-1", "due_at": f.at("2023-03-10 18:00"),
        "first_responsible_name": "王建国", "first_responsible_phone": "13800000001",
        "officer_name": "刘洋", "officer_phone": "0518-82310103",
    }  # fmt: skip
    assert isinstance(late["days_overdue"], int) and late["days_overdue"] > 365  # in 2023
    summary = {(r["phase"], r["venue_kind"]): r for r in by_name["summary"].rows}
    # Every phase has started by now: the supermarket, never inspected, is in each of them.
    assert {k for k in summary if k[1] == "mall_supermarket"} == {
        ("self_check", "mall_supermarket"), ("re_review", "mall_supermarket"),
        ("long_term", "mall_supermarket"),
    }  # fmt: skip
    assert summary[("re_review", "farmers_market")]["pass_rate"] == 0.75
    on_time = {r["phase"]: r for r in by_name["on_time"].rows}
    assert on_time["re_review"]["on_time_original"] == 0
    assert on_time["re_review"]["on_time_extended"] == 1
    assert [r["issue_id"] for r in by_name["rebounds"].rows] == ["I3"]
    # A code the checklist does not list: projected, and listed as unknown.
    assert [
        (r["district"], r["item_code"], r["issues"]) for r in by_name["unknown_items"].rows
    ] == [("320703", "FM-NEW", 1)]
    assert {r["district"] for r in by_name["summary"].rows} == {"320703"}
    assert facts.district == "320703"


async def test_as_of_now_the_replay_says_what_the_views_say(
    harness: Harness, reader: Settings
) -> None:
    await _campaign(harness)
    now, from_views = await bootstrap.reports(reader, CAMPAIGN, REPORTS, None, None)
    _, replayed = await bootstrap.reports(reader, CAMPAIGN, REPORTS, None, now.as_of)
    assert replayed == from_views


async def test_as_of_a_past_moment(harness: Harness, reader: Settings) -> None:
    await _campaign(harness)
    _, reports = await bootstrap.reports(
        reader, CAMPAIGN, ["overdue", "summary"], "320703", f.at("2023-03-15 12:00")
    )
    overdue, summary = reports
    assert [(r["issue_id"], r["days_overdue"]) for r in overdue.rows] == [("I1", 5)]
    # long_term had not started by then: no row for it.
    assert {r["phase"] for r in summary.rows} == {"self_check", "re_review"}


async def test_waiting_lists_the_follow_ups_whose_issue_found_never_came(
    harness: Harness, reader: Settings
) -> None:
    await _campaign(harness)
    lost = f.due("LY-FM-001", "I-LOST", f.at("2023-03-05 11:00"), f.at("2023-03-20 18:00"))
    await harness.publish([lost, f.recheck_passed("LY-FM-001", "I1", f.at("2023-03-09 10:00"))])
    await harness.project()
    schema = await active_schema(harness.db)
    await harness.db.execute(
        f"UPDATE {schema}.pending_issue_events "
        "SET waiting_since = now() - interval '4 days 2 hours'"
    )
    facts, (waiting,) = await bootstrap.reports(reader, CAMPAIGN, ["waiting"], "320703", None)
    (row,) = waiting.rows
    assert {k: v for k, v in row.items() if k not in ("waiting_for", "waiting_since")} == {
        "district": "320703", "venue_id": "LY-FM-001", "venue": "墟沟农贸市场",
        "issue_id": "I-LOST", "event_type": "RectificationDue", "event_id": str(lost.event_id),
        "occurred_at": f.at("2023-03-05 11:00"),
    }  # fmt: skip
    assert row["waiting_since"] == facts.as_of - row["waiting_for"]  # type: ignore[operator]
    assert timedelta(days=4, hours=2) <= row["waiting_for"] < timedelta(days=4, hours=3)  # type: ignore[operator]
    # Through the public view only (the read-only role), and nothing of another district.
    _, (elsewhere,) = await bootstrap.reports(reader, CAMPAIGN, ["waiting"], "320706", None)
    assert elsewhere.rows == ()


async def test_cw_init_gives_an_earlier_generation_the_waiting_since_column(
    harness: Harness,
) -> None:
    schema = await active_schema(harness.db)
    await harness.db.execute("DROP VIEW public.waiting_follow_ups")
    await harness.db.execute(f"ALTER TABLE {schema}.pending_issue_events DROP COLUMN waiting_since")
    await harness.publish(
        [f.due("LY-FM-001", "I-LOST", f.at("2023-03-05 11:00"), f.at("2023-03-20 18:00"))]
    )
    await initialise(harness.settings)
    await harness.project()
    rows = await harness.rows("SELECT issue_id, waiting_since FROM public.waiting_follow_ups")
    assert [r["issue_id"] for r in rows] == ["I-LOST"] and rows[0]["waiting_since"] is not None


async def test_coverage_per_phase_counts_the_venues_registered_before_it_ended(
    harness: Harness, reader: Settings
) -> None:
    """Issue 17: registering a venue in 2026 lowered the 2023 self-check coverage to 85.7%."""
    markets = [f"LY-FM-{n:03d}" for n in range(1, 7)]
    await harness.publish([
        *(f.venue(m, f.at("2023-02-01 09:00")) for m in markets),
        *(f.inspection(m, f.at("2023-02-15 09:00"), kind="self_check") for m in markets),
        f.venue("LY-FM-NEW", f.at("2026-05-01 09:00")),
        # Registered again in 2026 (a new first responsible person): still a 2023 venue.
        f.venue(markets[0], f.at("2026-05-02 09:00"), name="墟沟农贸市场（更名）"),
    ])  # fmt: skip
    await harness.project()
    now, reports = await bootstrap.reports(reader, CAMPAIGN, ["summary"], "320703", None)
    (summary,) = reports
    shown = {r["phase"]: (r["venues"], r["venues_inspected"], r["coverage"]) for r in summary.rows}
    assert shown == {
        "self_check": (6, 6, 1.0), "re_review": (6, 0, 0.0), "long_term": (7, 0, 0.0),
    }  # fmt: skip
    # The replay of the archive as of now counts the same venues in each phase.
    _, replayed = await bootstrap.reports(reader, CAMPAIGN, ["summary"], "320703", now.as_of)
    assert replayed == reports
    # So does the view itself, which Grafana and psql read.
    rows = await harness.db.fetch(
        "SELECT phase, venues, venues_inspected FROM public.phase_summary ORDER BY phase"
    )
    assert {r["phase"]: (r["venues"], r["venues_inspected"]) for r in rows} == {
        "self_check": (6, 6), "re_review": (6, 0), "long_term": (7, 0),
    }  # fmt: skip
    first = await harness.db.fetchrow(
        "SELECT name, registered_at FROM public.venues WHERE venue_id = $1", markets[0]
    )
    assert first is not None
    assert (first["name"], first["registered_at"]) == (
        "墟沟农贸市场（更名）",
        f.at("2023-02-01 09:00"),
    )


async def test_sql_counts_days_overdue_as_python_does(harness: Harness) -> None:
    """The views' ``days_overdue`` (and Grafana's 逾期天数, which reads it) against
    ``services.common.overdue`` at the edges: midnight, the deadline's own hour, a microsecond."""
    await _campaign(harness)
    ats = [at for at, _ in OVERDUE_CASES]
    got = await harness.db.fetch(
        "SELECT at, public.days_overdue($1, at) AS days FROM unnest($2::timestamptz[]) AS at",
        DUE, ats,
    )  # fmt: skip
    assert [(r["at"], r["days"]) for r in got] == [(at, days_overdue(DUE, at)) for at in ats]
    assert [r["days"] for r in got] == [days for _, days in OVERDUE_CASES]


async def test_the_view_and_the_report_say_the_same_days_overdue(
    harness: Harness, reader: Settings
) -> None:
    await _campaign(harness)
    rows = await harness.db.fetch(
        "SELECT issue_id, due_at, days_overdue, now() AS at FROM issue_status"
        " WHERE status = 'overdue'"
    )
    assert [r["issue_id"] for r in rows] == ["I1"]
    (row,) = rows
    assert row["days_overdue"] == days_overdue(row["due_at"], row["at"]) > 365
    facts, reports = await bootstrap.reports(reader, CAMPAIGN, ["overdue"], "320703", None)
    (late,) = reports[0].rows
    assert late["days_overdue"] == days_overdue(row["due_at"], facts.as_of)
    # The read-only role (Grafana's data source) reads it too.
    assert reader.reader_database_url is not None
    conn = await asyncpg.connect(reader.reader_database_url)
    try:
        as_reader = await conn.fetchval(
            "SELECT days_overdue FROM issue_status WHERE issue_id = 'I1'"
        )
    finally:
        await conn.close()
    assert as_reader == row["days_overdue"]
    # Not overdue: no count at all.
    others = await harness.db.fetch(
        "SELECT days_overdue FROM issue_status WHERE status <> 'overdue'"
    )
    assert {r["days_overdue"] for r in others} == {None}
