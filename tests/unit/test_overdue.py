"""逾期天数: one count of started days, the same in ``cw report overdue``, the daily digest and
the escalation reminders on the same data at the same moment."""

from __future__ import annotations

import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from contracts.reminders import reminder_id
from services.common.campaign import ReminderRules, load_campaign
from services.common.lifecycle import Issue
from services.common.overdue import days_overdue
from services.reminders.domain.firing import digest_reminder, issue_reminder
from services.reminders.domain.model import Timer
from services.reports.adapters.views import replayed
from services.reports.domain.reports import build
from tests import factories as f
from tests.read_model_suite import stream

pytestmark = pytest.mark.unit
TZ = ZoneInfo("Asia/Shanghai")
DUE = f.at("2023-03-10 17:30")
MINUTE = timedelta(minutes=1)


CASES = [
    (DUE - MINUTE, 0),
    (DUE, 0),  # at the deadline: not late yet
    (DUE + timedelta(microseconds=1), 1),
    (DUE + timedelta(seconds=1), 1),
    (DUE + MINUTE, 1),
    (f.at("2023-03-10 23:59"), 1),
    (f.at("2023-03-11 00:00"), 1),  # midnight passes: still the first day
    (f.at("2023-03-11 00:01"), 1),
    (f.at("2023-03-11 17:29"), 1),  # the deadline's own hour, the next day
    (f.at("2023-03-11 17:30"), 1),  # 24 hours late: the first day, complete
    (DUE + timedelta(days=1, microseconds=1), 2),
    (f.at("2023-03-11 17:31"), 2),  # a minute more starts the second
    (f.at("2023-03-12 00:00"), 2),
    (DUE + timedelta(days=1194), 1194),
    (DUE + timedelta(days=1194, minutes=1), 1195),
]
"""(now, days overdue) for a deadline at ``DUE``: the edges the bureau cares about."""


@pytest.mark.parametrize(("now", "days"), CASES)
def test_started_days_after_the_deadline(now: object, days: int) -> None:
    assert days_overdue(DUE, now) == days  # type: ignore[arg-type]


def test_a_deadline_just_before_midnight() -> None:
    due = f.at("2023-03-10 23:30")
    assert days_overdue(due, f.at("2023-03-11 00:30")) == 1  # another calendar day, one hour late
    assert days_overdue(due, f.at("2023-03-11 23:30")) == 1
    assert days_overdue(due, f.at("2023-03-11 23:31")) == 2


def test_the_instant_not_the_zone_counts() -> None:
    utc = DUE.astimezone(ZoneInfo("UTC"))
    now = f.at("2023-03-12 09:00")
    assert days_overdue(utc, now) == days_overdue(DUE, now.astimezone(ZoneInfo("UTC"))) == 2


M = "LY-FM-001"


def test_the_report_the_digest_and_the_escalation_say_the_same_number() -> None:
    """The issue 17 morning: the digest said 1,194 days and ``cw report overdue`` 1,195."""
    due = f.at("2023-03-10 17:30")
    morning = f.at("2026-06-16 08:30")  # 1,193 days and 15 hours: the 1,194th day started
    expected = days_overdue(due, morning)
    assert expected == 1194
    market = {
        "name": "墟沟农贸市场", "kind": "farmers_market", "street": "墟沟街道",
        "first_responsible": {"name": "王建国", "phone": "13800000001"},
    }  # fmt: skip
    events = [
        f.event("VenueRegistered", M, f.at("2023-02-01 09:00"), market),
        f.issue(M, "I1", f.at("2023-03-02 10:00")),
        f.due(M, "I1", f.at("2023-03-02 11:00"), due, order_no="ZG-1"),
    ]
    campaign = load_campaign()
    facts = replayed(stream(events), morning, None, campaign)
    (report,) = build(facts, ["overdue"])
    (row,) = report.rows
    assert row["days_overdue"] == expected

    issue = Issue(
        district=f.DISTRICT, issue_id="I1", venue_id=M, phase="re_review", item_code="FM-3F",
        category="FM", severity="major", description="", found_at=f.at("2023-03-02 10:00"),
        due_at=due, order_no="ZG-1",
    )  # fmt: skip
    digest = Timer(reminder_id(f.DISTRICT, "digest", local_date=morning.date()), f.DISTRICT,
                   "digest", 0, morning, "pending")  # fmt: skip
    r = digest_reminder(
        digest, [issue], {}, rules=ReminderRules(), tz=TZ, issued_at=morning, names=campaign.names
    )
    assert r is not None
    assert re.findall(r"已逾期 (\d+) 天", r.body_zh) == [str(expected)]

    rid = reminder_id(f.DISTRICT, "escalation", issue_id="I1", level=3, deadline=due)
    timer = Timer(rid, f.DISTRICT, "escalation", 3, morning, "pending", "I1", due)
    e = issue_reminder(
        timer, issue, None, rules=ReminderRules(), tz=TZ, issued_at=morning, names=campaign.names
    )
    assert re.findall(r"已逾期 (\d+) 天", e.body_zh) == [str(expected)]
    assert f"Overdue by {expected} days" in e.body_en
