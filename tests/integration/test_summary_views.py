"""The bureau's roll-ups: per district, phase and venue kind; per street office (街道)."""

from __future__ import annotations

import pytest

from tests import factories as f
from tests.integration.conftest import Harness

pytestmark = pytest.mark.integration


async def _campaign(harness: Harness) -> None:
    day = f.at("2023-03-01 09:00")
    await harness.publish(
        [
            f.venue("M1", day, street="墟沟街道"),
            f.venue("M2", day, street="墟沟街道"),
            f.venue("S1", day, kind="mall_supermarket", street="连岛街道"),
            f.inspection("M1", day),
            f.inspection("S1", day),
            f.issue("M1", "I1", day),
            f.issue("M2", "I2", day),
            f.issue("S1", "I3", day),
            f.recheck_passed("S1", "I3", f.at("2023-03-02 09:00")),
            f.issue("X9", "I4", day),  # a venue not registered yet
            f.venue("M7", day, district="320706"),
            f.issue("M7", "I1", day, district="320706"),
        ]
    )  # fmt: skip
    await harness.project()


async def test_district_phase_summary_splits_phase_summary_by_district(harness: Harness) -> None:
    await _campaign(harness)
    rows = await harness.rows(
        "SELECT district, phase, venue_kind, venues_inspected, inspections, issues_found, "
        "issues_open, issues_closed FROM district_phase_summary ORDER BY 1, 2, 3"
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
        "issues_closed FROM street_summary WHERE district = '320703' ORDER BY street NULLS LAST"
    )
    assert rows == [
        {"district": "320703", "street": "墟沟街道", "venues": 2, "venues_inspected": 1,
         "issues_found": 2, "issues_open": 2, "issues_closed": 0},
        {"district": "320703", "street": "连岛街道", "venues": 1, "venues_inspected": 1,
         "issues_found": 1, "issues_open": 0, "issues_closed": 1},
        {"district": "320703", "street": None, "venues": 1, "venues_inspected": 0,
         "issues_found": 1, "issues_open": 1, "issues_closed": 0},
    ]  # fmt: skip
