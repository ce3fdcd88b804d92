from __future__ import annotations

import pytest

from tests import factories as f
from tests.integration.conftest import Harness

pytestmark = pytest.mark.integration


async def test_issue_lifecycle_reaches_the_views(harness: Harness) -> None:
    v = "LY-FM-007"
    await harness.publish(
        [
            f.venue(v, f.at("2023-02-01 09:00")),
            f.inspection(v, f.at("2023-03-15 10:00")),
            f.issue(v, "ISS-1", f.at("2023-03-15 10:05")),
            f.due(v, "ISS-1", f.at("2023-03-15 11:00"), f.at("2023-03-25 18:00")),
            f.recheck_failed(v, "ISS-1", f.at("2023-03-20 10:00")),
            f.recheck_passed(v, "ISS-1", f.at("2023-03-24 10:00")),
        ]
    )
    await harness.project()
    rows = await harness.rows("SELECT * FROM issue_status")
    assert len(rows) == 1
    assert rows[0]["status"] == "closed"
    assert rows[0]["closed_on_time"] is True
    assert rows[0]["recheck_failures"] == 1
    summary = await harness.rows("SELECT * FROM venue_phase_summary ORDER BY phase")
    # Every phase of the campaign has started: the registered venue is in each (coverage).
    assert [(r["phase"], r["inspections"], r["issues_closed"]) for r in summary] == [
        ("long_term", 0, 0), ("re_review", 1, 1), ("self_check", 0, 0),
    ]  # fmt: skip
