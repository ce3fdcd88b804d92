"""The bureau's roll-ups: per district, phase and venue kind; per street office (街道)."""

from __future__ import annotations

import pytest

from tests import factories as f
from tests.integration.conftest import Harness

pytestmark = pytest.mark.integration


async def _campaign(harness: Harness) -> None:
    day = f.at("2023-03-01 09:00")
    registered = f.at("2023-02-01 09:00")  # before self_check ended: a venue of every phase
    await harness.publish(
        [
            f.venue("M1", registered, street="墟沟街道"),
            f.venue("M2", registered, street="墟沟街道"),
            f.venue("S1", registered, kind="mall_supermarket", street="连岛街道"),
            f.inspection("M1", day),
            f.inspection("S1", day),
            f.issue("M1", "I1", day),
            f.issue("M2", "I2", day),
            f.issue("S1", "I3", day),
            f.recheck_passed("S1", "I3", f.at("2023-03-02 09:00")),
            f.issue("X9", "I4", day),  # a venue not registered yet
            f.venue("M7", registered, district="320706"),
            f.issue("M7", "I1", day, district="320706"),
        ]
    )  # fmt: skip
    await harness.project()


async def test_district_phase_summary_splits_phase_summary_by_district(harness: Harness) -> None:
    await _campaign(harness)
    rows = await harness.rows(
        "SELECT district, phase, venue_kind, venues_inspected, inspections, issues_found, "
        "issues_open, issues_closed FROM district_phase_summary WHERE phase = 're_review' "
        "ORDER BY 1, 2, 3"
    )
    assert rows == [
        {"district": "320703", "phase": "re_review", "venue_kind": "farmers_market",
         "venues_inspected": 1, "inspections": 1, "issues_found": 2, "issues_open": 2,
         "issues_closed": 0},
        {"district": "320703", "phase": "re_review", "venue_kind": "mall_supermarket",
         "venues_inspected": 1, "inspections": 1, "issues_found": 1, "issues_open": 0,
         "issues_closed": 1},
        {"district": "320703", "phase": "re_review", "venue_kind": "unregistered",
         "venues_inspected": 0, "inspections": 0, "issues_found": 1, "issues_open": 1,
         "issues_closed": 0},
        {"district": "320706", "phase": "re_review", "venue_kind": "farmers_market",
         "venues_inspected": 0, "inspections": 0, "issues_found": 1, "issues_open": 1,
         "issues_closed": 0},
    ]  # fmt: skip
    # Summed over districts, it is phase_summary.
    total = await harness.rows(
        "SELECT phase, venue_kind, sum(issues_found)::int AS found FROM district_phase_summary "
        "GROUP BY 1, 2 ORDER BY 1, 2"
    )
    assert total == await harness.rows(
        "SELECT phase, venue_kind, issues_found AS found FROM phase_summary ORDER BY 1, 2"
    )


async def test_street_summary_rolls_venues_up_to_their_street(harness: Harness) -> None:
    await _campaign(harness)
    rows = await harness.rows(
        "SELECT district, street, venues, venues_inspected, issues_found, issues_open, "
        "issues_closed FROM street_summary WHERE district = '320703' AND phase = 're_review' "
        "ORDER BY street NULLS LAST"
    )
    assert rows == [
        {"district": "320703", "street": "墟沟街道", "venues": 2, "venues_inspected": 1,
         "issues_found": 2, "issues_open": 2, "issues_closed": 0},
        {"district": "320703", "street": "连岛街道", "venues": 1, "venues_inspected": 1,
         "issues_found": 1, "issues_open": 0, "issues_closed": 1},
        {"district": "320703", "street": None, "venues": 1, "venues_inspected": 0,
         "issues_found": 1, "issues_open": 1, "issues_closed": 0},
    ]  # fmt: skip


async def test_a_registered_venue_shows_in_every_phase_that_has_started(harness: Harness) -> None:
    await _campaign(harness)
    # Every phase of the shipped campaign has started by now: M2 was never inspected in any.
    rows = await harness.rows(
        "SELECT phase, inspections, issues_found, last_inspected_at, pass_rate "
        "FROM venue_phase_summary WHERE venue_id = 'M2' ORDER BY phase"
    )
    assert rows == [
        {"phase": p, "inspections": 0, "issues_found": int(p == "re_review"),
         "last_inspected_at": None, "pass_rate": None}
        for p in ("long_term", "re_review", "self_check")
    ]  # fmt: skip
    # venues_inspected keeps its meaning; venues says how many there were to inspect.
    summary = await harness.rows(
        "SELECT phase, venues, venues_inspected FROM district_phase_summary "
        "WHERE district = '320703' AND venue_kind = 'farmers_market' ORDER BY phase"
    )
    assert summary == [
        {"phase": "long_term", "venues": 2, "venues_inspected": 0},
        {"phase": "re_review", "venues": 2, "venues_inspected": 1},
        {"phase": "self_check", "venues": 2, "venues_inspected": 0},
    ]
    # A venue not registered shows only where it had activity.
    assert await harness.rows("SELECT phase FROM venue_phase_summary WHERE venue_id = 'X9'") == [
        {"phase": "re_review"}
    ]


async def test_a_phase_that_has_not_started_has_no_empty_rows(harness: Harness) -> None:
    await harness.publish([f.venue("M1", f.at("2023-02-01 09:00"))])
    await harness.project()
    await harness.db.execute(
        "UPDATE cw.campaign_phases SET starts_at = now() + interval '1 day' "
        "WHERE phase = 'long_term'"
    )
    rows = await harness.rows("SELECT phase FROM venue_phase_summary ORDER BY phase")
    assert rows == [{"phase": "re_review"}, {"phase": "self_check"}]


async def test_inspections_by_kind_and_the_pass_rate(harness: Harness) -> None:
    day = f.at("2023-03-01 09:00")
    await harness.publish([
        f.venue("M1", day),
        f.inspection("M1", day, kind="supervision", items_checked=8, items_failed=2),
        f.inspection("M1", day, kind="look_back", items_checked=2, items_failed=0),
        f.inspection("M1", day, kind="re_review"),
    ])  # fmt: skip
    await harness.project()
    cols = (
        "inspections, inspections_self_check, inspections_supervision, inspections_look_back, "
        "inspections_re_review, items_checked, items_failed, pass_rate"
    )
    expected = {
        "inspections": 3, "inspections_self_check": 0, "inspections_supervision": 1,
        "inspections_look_back": 1, "inspections_re_review": 1, "items_checked": 10,
        "items_failed": 2, "pass_rate": 0.8,
    }  # fmt: skip
    where = "phase = 're_review'"
    for view in ("venue_phase_summary", "district_phase_summary", "phase_summary"):
        assert await harness.rows(f"SELECT {cols} FROM {view} WHERE {where}") == [expected], view
    street = await harness.rows(
        f"SELECT items_checked, items_failed, pass_rate FROM street_summary WHERE {where}"
    )
    assert street == [{"items_checked": 10, "items_failed": 2, "pass_rate": 0.8}]


async def test_on_time_against_the_original_and_the_extended_deadline(harness: Harness) -> None:
    m = "M1"
    await harness.publish([
        f.issue(m, "I1", f.at("2023-03-01 10:00")),
        f.due(m, "I1", f.at("2023-03-01 11:00"), f.at("2023-03-10 18:00")),
        f.due(m, "I1", f.at("2023-03-09 11:00"), f.at("2023-03-20 18:00")),
        f.recheck_passed(m, "I1", f.at("2023-03-15 10:00")),  # late by the first, on time now
        f.issue(m, "I2", f.at("2023-03-01 10:00"), item_code="FM-PUB"),
        f.due(m, "I2", f.at("2023-03-01 11:00"), f.at("2023-03-10 18:00")),
        f.recheck_passed(m, "I2", f.at("2023-03-05 10:00")),
        f.issue(m, "I3", f.at("2023-03-01 10:00"), item_code="FM-WC"),
    ])  # fmt: skip
    await harness.project()
    rows = await harness.rows(
        "SELECT issue_id, original_due_at, due_at, extensions, closed_on_time, "
        "closed_on_time_original FROM issue_status ORDER BY issue_id"
    )
    assert rows == [
        {"issue_id": "I1", "original_due_at": f.at("2023-03-10 18:00"),
         "due_at": f.at("2023-03-20 18:00"), "extensions": 1, "closed_on_time": True,
         "closed_on_time_original": False},
        {"issue_id": "I2", "original_due_at": f.at("2023-03-10 18:00"),
         "due_at": f.at("2023-03-10 18:00"), "extensions": 0, "closed_on_time": True,
         "closed_on_time_original": True},
        {"issue_id": "I3", "original_due_at": None, "due_at": None, "extensions": 0,
         "closed_on_time": None, "closed_on_time_original": None},
    ]  # fmt: skip
