"""Times in the campaign's zone for a person in a plain session, and nothing of ours depending on
the session's zone."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from services.common.entrypoints import initialise
from tests import factories as f
from tests.integration.conftest import Harness

pytestmark = pytest.mark.integration


async def test_a_plain_session_after_init_shows_the_views_in_beijing_time(
    harness: Harness,
) -> None:
    await harness.publish([f.issue("V1", "I1", f.at("2023-02-13 08:45"))])
    await harness.project()
    fresh = await asyncpg.connect(harness.settings.database_url)  # as psql would: no options
    try:
        assert await fresh.fetchval("SHOW timezone") == "Asia/Shanghai"
        found = await fresh.fetchval("SELECT found_at::text FROM issue_status")
    finally:
        await fresh.close()
    assert found == "2023-02-13 08:45:00+08"


async def test_init_again_leaves_the_zone_and_names_a_role_that_overrides_it(
    harness: Harness,
) -> None:
    role = f"cw_test_role_{uuid.uuid4().hex[:8]}"
    database = await harness.db.fetchval("SELECT current_database()")
    await harness.db.execute(f"CREATE ROLE {role}")
    try:
        await harness.db.execute(
            f"ALTER ROLE {role} IN DATABASE \"{database}\" SET timezone = 'UTC'"
        )
        report = await initialise(harness.settings)
    finally:
        await harness.db.execute(f"DROP ROLE {role}")
    assert f"database {database}: TimeZone Asia/Shanghai, left unchanged" in report
    assert any(line.startswith(f"role {role}: its own TimeZone UTC") for line in report), report


async def test_phases_follow_the_campaigns_midnight_whatever_the_sessions_zone(
    harness: Harness,
) -> None:
    """The phase boundary is local midnight of 2023-03-01 (16:00 UTC the day before), computed
    from the campaign, not from the session: even a projector whose sessions run in Los Angeles
    time puts 23:30 in self_check and 00:30 in re_review."""
    database = await harness.db.fetchval("SELECT current_database()")
    await harness.db.execute(f"ALTER DATABASE \"{database}\" SET timezone TO 'America/Los_Angeles'")
    await harness.publish(
        [
            f.issue("V1", "before", f.at("2023-02-28 23:30")),
            f.issue("V1", "after", f.at("2023-03-01 00:30")),
            f.inspection("V1", f.at("2023-02-28 23:59:59")),
            f.inspection("V1", f.at("2023-03-01 00:00")),
        ]
    )
    await harness.project()
    phases = await harness.rows(
        "SELECT issue_id, phase, found_at FROM issue_status ORDER BY issue_id"
    )
    assert phases == [  # the instants written in that session are the events' own
        {"issue_id": "after", "phase": "re_review", "found_at": f.at("2023-03-01 00:30")},
        {"issue_id": "before", "phase": "self_check", "found_at": f.at("2023-02-28 23:30")},
    ]
    counts = await harness.rows("SELECT phase, inspections FROM venue_phase_summary ORDER BY phase")
    assert counts == [
        {"phase": "re_review", "inspections": 1},
        {"phase": "self_check", "inspections": 1},
    ]
