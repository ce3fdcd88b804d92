"""The reminders' pure rules: which timers the issue lifecycle schedules and cancels, when a
timer is skipped, and what a due timer says to whom."""

from __future__ import annotations

from datetime import time, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest

from contracts.reminders import reminder_id
from services.common.campaign import ChecklistItem, Contact, Names, ReminderRules, load_campaign
from services.common.lifecycle import Issue
from services.reminders.domain.firing import digest_reminder, issue_reminder, recipients
from services.reminders.domain.model import Changes, Snapshot, Timer, Venue
from services.reminders.domain.scheduling import next_digest, schedule
from tests import factories as f
from tests.read_model_suite import stream

pytestmark = pytest.mark.unit
TZ = ZoneInfo("Asia/Shanghai")
V = "LY-FM-007"
RULES = ReminderRules(
    deputy_head=Contact("李分管", "13900000001"), head=Contact("张局长", "13900000002")
)
T0 = f.at("2023-03-01 10:00")
NAMES = load_campaign().names
WINDOW = timedelta(days=90)


class World:
    """The scheduling rules over batches, state carried from one to the next as a store would."""

    def __init__(self, rules: ReminderRules = RULES) -> None:
        self.rules = rules
        self.snapshot = Snapshot()
        self.timers: dict[UUID, Timer] = {}
        self.seq = 0

    def apply(self, events: list[object], now: object) -> Changes:
        batch = stream(events, start=self.seq + 1)  # type: ignore[arg-type]
        self.seq += len(batch)
        snap = self.snapshot
        snap.timers = {}
        for t in self.timers.values():
            if t.issue_id is not None:
                snap.timers.setdefault((t.district, t.issue_id), []).append(t)
        snap.digest_districts = {
            t.district for t in self.timers.values() if t.kind == "digest" and t.state == "pending"
        }
        changes = schedule(snap, batch, rules=self.rules, tz=TZ, rebound_window=WINDOW,
                           now=now)  # type: ignore[arg-type]  # fmt: skip
        self.timers.update(changes.timers)
        return changes

    def of(self, kind: str, state: str | None = None) -> list[Timer]:
        return sorted(
            (t for t in self.timers.values() if t.kind == kind and state in (None, t.state)),
            key=lambda t: (t.fire_at, t.level),
        )


def test_an_issue_schedules_no_order_and_its_districts_digest() -> None:
    w = World()
    changes = w.apply([f.issue(V, "I1", T0)], now=T0)
    (no_order,) = w.of("no_order")
    assert (no_order.fire_at, no_order.state) == (T0 + timedelta(days=3), "pending")
    assert no_order.reminder_id == reminder_id(f.DISTRICT, "no_order", issue_id="I1")
    (digest,) = w.of("digest")
    assert digest.fire_at == f.at("2023-03-02 08:30")
    assert changes.tally.scheduled == {"no_order": 1, "digest": 1}
    w.apply([f.issue(V, "I2", T0)], now=T0)
    assert len(w.of("digest")) == 1  # one per district


def test_an_order_replaces_no_order_with_the_deadlines_timers() -> None:
    w = World()
    due = T0 + timedelta(days=10)
    w.apply([f.issue(V, "I1", T0), f.due(V, "I1", T0, due)], now=T0)
    assert [t.state for t in w.of("no_order")] == ["cancelled"]
    soon = w.of("due_soon", "pending")
    assert [(t.level, t.fire_at) for t in soon] == [
        (1, due - timedelta(hours=72)),
        (2, due - timedelta(hours=24)),
    ]
    assert [t.fire_at for t in w.of("overdue", "pending")] == [due]
    assert [(t.level, t.fire_at) for t in w.of("escalation", "pending")] == [
        (n, due + n * timedelta(hours=72)) for n in (1, 2, 3)
    ]
    assert all(t.deadline == due for t in soon)


def test_an_extension_cancels_the_old_deadline_and_schedules_the_new() -> None:
    w = World()
    first, second = T0 + timedelta(days=10), T0 + timedelta(days=20)
    w.apply([f.issue(V, "I1", T0), f.due(V, "I1", T0, first)], now=T0)
    changes = w.apply([f.due(V, "I1", T0 + timedelta(days=1), second)], now=T0)
    assert {t.deadline for t in w.timers.values() if t.state == "pending" and t.deadline} == {
        second
    }
    assert changes.tally.cancelled == {"due_soon": 2, "overdue": 1, "escalation": 3}
    assert changes.tally.scheduled == {"due_soon": 2, "overdue": 1, "escalation": 3}
    # The same order again changes nothing; going back to the first deadline revives its timers.
    assert not w.apply([f.due(V, "I1", T0, second)], now=T0).timers
    w.apply([f.due(V, "I1", T0, first, order_no="ZG-3")], now=T0)
    assert {t.deadline for t in w.timers.values() if t.state == "pending" and t.deadline} == {first}


def test_a_failed_recheck_cancels_nothing_a_passed_one_everything() -> None:
    w = World()
    due = T0 + timedelta(days=10)
    w.apply([f.issue(V, "I1", T0), f.due(V, "I1", T0, due)], now=T0)
    pending = len([t for t in w.timers.values() if t.state == "pending"])
    assert not w.apply([f.recheck_failed(V, "I1", T0 + timedelta(days=2))], now=T0).timers
    closed = T0 + timedelta(days=3)
    changes = w.apply([f.recheck_passed(V, "I1", closed)], now=T0)
    assert sum(changes.tally.cancelled.values()) == pending - 1  # all but the digest
    issue_timers = [t for t in w.timers.values() if t.issue_id == "I1"]
    assert [t.kind for t in issue_timers if t.state == "pending"] == ["look_back_due"]
    assert w.of("look_back_due")[0].fire_at == closed + timedelta(days=30)
    # Closed stays closed: a later order schedules nothing.
    assert not w.apply([f.due(V, "I1", closed, closed + timedelta(days=9))], now=T0).timers


def test_a_rebound_alerts_at_once() -> None:
    w = World()
    w.apply([f.issue(V, "I1", T0), f.recheck_passed(V, "I1", T0 + timedelta(days=1))], now=T0)
    found = T0 + timedelta(days=20)
    w.apply([f.issue(V, "I2", found)], now=found)
    (rebound,) = w.of("rebound_detected")
    assert (rebound.issue_id, rebound.fire_at, rebound.state) == ("I2", found, "pending")
    w.apply([f.issue("OTHER", "I3", found)], now=found)
    assert len(w.of("rebound_detected")) == 1


def test_history_schedules_nothing_stale() -> None:
    w = World()
    now = T0 + timedelta(days=400)
    changes = w.apply([f.issue(V, "I1", T0), f.due(V, "I1", T0, T0 + timedelta(days=10))], now=now)
    assert not changes.tally.scheduled.keys() - {"digest"}
    assert changes.tally.skipped == {
        ("no_order", "stale"): 1,
        ("due_soon", "passed"): 2,
        ("overdue", "stale"): 1,
        ("escalation", "stale"): 3,
    }
    assert [t.state for t in w.of("digest")] == ["pending"]
    assert w.of("digest")[0].fire_at > now


def test_a_passed_due_soon_is_skipped_a_recent_overdue_fires_at_once() -> None:
    w = World()
    due = T0 + timedelta(hours=1)
    now = due + timedelta(hours=2)  # within stale_after (24h)
    w.apply([f.issue(V, "I1", T0), f.due(V, "I1", T0, due)], now=now)
    assert {t.state for t in w.of("due_soon")} == {"skipped"}
    assert [t.state for t in w.of("overdue")] == ["pending"]


def test_a_follow_up_before_its_issue_waits_for_it() -> None:
    w = World()
    due = T0 + timedelta(days=10)
    changes = w.apply([f.due(V, "I1", T0, due)], now=T0)
    assert not changes.timers and len(changes.pending_added) == 1
    w.snapshot.pending = {k: [se] for k, se in changes.pending_added}
    changes = w.apply([f.issue(V, "I1", T0)], now=T0)
    assert changes.pending_resolved == {(f.DISTRICT, "I1")}
    assert [t.state for t in w.of("overdue")] == ["pending"]
    assert [t.state for t in w.of("no_order")] == ["cancelled"]


def test_a_follow_up_naming_another_venue_is_refused() -> None:
    w = World()
    changes = w.apply(
        [f.issue(V, "I1", T0), f.recheck_passed("OTHER", "I1", T0 + timedelta(days=1))], now=T0
    )
    assert len(changes.refused) == 1
    assert not w.of("look_back_due")


def test_issue_ids_are_per_district() -> None:
    w = World()
    w.apply([f.issue(V, "I1", T0), f.issue(V, "I1", T0, district="320705")], now=T0)
    assert {t.district for t in w.of("no_order")} == {f.DISTRICT, "320705"}
    assert len({t.reminder_id for t in w.of("no_order")}) == 2


def test_the_digest_is_at_digest_at_local_time() -> None:
    assert next_digest(f.at("2023-03-01 08:29"), time(8, 30), TZ)[0] == f.at("2023-03-01 08:30")
    fire, day = next_digest(f.at("2023-03-01 08:30"), time(8, 30), TZ)
    assert (fire, day.isoformat()) == (f.at("2023-03-02 08:30"), "2023-03-02")


VENUE = Venue(f.DISTRICT, V, "海连路农贸市场", "王建国", "13800000000", "李明", "13700000000")


def _issue(**kw: object) -> Issue:
    base: dict[str, object] = {
        "district": f.DISTRICT, "issue_id": "I1", "venue_id": V, "phase": "re_review",
        "item_code": "FM-3F", "category": "FM", "severity": "major",
        "description": "熟食区未设防蝇设施", "found_at": T0,
        "due_at": f.at("2023-03-10 17:30"), "order_no": "LY-ZG-2023-031", "assignee": "赵六",
    }  # fmt: skip
    return Issue(**{**base, **kw})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "level", "roles"),
    [
        ("no_order", 0, ["officer"]),
        ("due_soon", 1, ["first_responsible", "assignee"]),
        ("overdue", 0, ["first_responsible", "officer"]),
        ("escalation", 1, ["first_responsible", "officer"]),
        ("escalation", 2, ["officer", "deputy_head"]),
        ("escalation", 3, ["deputy_head", "head"]),
        ("escalation", 4, ["deputy_head", "head"]),
        ("look_back_due", 0, ["officer"]),
        ("rebound_detected", 0, ["officer", "deputy_head"]),
    ],
)
def test_recipients_by_kind_and_level(kind: str, level: int, roles: list[str]) -> None:
    assert [r.role for r in recipients(kind, level, _issue(), VENUE, RULES)] == roles


def test_an_overdue_reminder_in_the_bureaus_words() -> None:
    issue = _issue()
    due = issue.due_at
    assert due is not None
    rid = reminder_id(f.DISTRICT, "escalation", issue_id="I1", level=1, deadline=due)
    timer = Timer(rid, f.DISTRICT, "escalation", 1, due + timedelta(days=3), "pending", "I1", due)
    r = issue_reminder(
        timer, issue, VENUE, rules=RULES, tz=TZ, issued_at=timer.fire_at, names=NAMES
    )
    for words in ("海连路农贸市场", "防蝇防鼠防尘", "LY-ZG-2023-031", "2023年3月10日 17:30",
                  "已逾期 3 天", "王建国（第一责任人，13800000000）",
                  "李明（责任干部，"):  # fmt: skip
        assert words in r.body_zh, words
    assert r.title_zh.startswith("【逾期升级1级】海连路农贸市场")
    assert "Overdue by 3 days" in r.body_en
    assert (r.reminder_id, r.due_at, r.venue_name) == (rid, due, "海连路农贸市场")


def test_an_unregistered_venue_still_gets_its_reminder() -> None:
    issue = _issue()
    due = issue.due_at
    assert due is not None
    timer = Timer(reminder_id(f.DISTRICT, "escalation", issue_id="I1", level=2, deadline=due),
                  f.DISTRICT, "escalation", 2, due, "pending", "I1", due)  # fmt: skip
    r = issue_reminder(timer, issue, None, rules=RULES, tz=TZ, issued_at=due, names=NAMES)
    assert [x.role for x in r.recipients] == ["deputy_head"]
    assert r.venue_name is None and "未登记" in r.title_zh


def test_a_digest_counts_and_lists_the_most_overdue() -> None:
    at = f.at("2023-03-12 08:30")
    timer = Timer(reminder_id(f.DISTRICT, "digest", local_date=at.date()), f.DISTRICT, "digest",
                  0, at, "pending")  # fmt: skip
    issues = [
        _issue(),
        _issue(issue_id="I2", due_at=f.at("2023-03-12 18:00"), rebound=True),
        _issue(issue_id="I3", due_at=None, venue_id="UNREG"),
    ]
    r = digest_reminder(timer, issues, {(f.DISTRICT, V): VENUE}, rules=RULES, tz=TZ,
                        issued_at=at, names=NAMES)  # fmt: skip
    assert r is not None
    assert r.title_zh.startswith("【每日汇总】辖区 连云区 2023年3月12日")
    assert "截至 2023年3月12日 08:30（北京时间），辖区 连云区 在办问题" in r.body_zh
    assert "district 连云区" in r.body_en and r.district == f.DISTRICT
    assert "在办问题 3 件，今日到期 1 件，已逾期 1 件，反复反弹 1 件" in r.body_zh
    assert "1. 海连路农贸市场“防蝇防鼠防尘（三防）”（I1）" in r.body_zh
    assert [x.role for x in r.recipients] == ["officer", "deputy_head"]
    assert r.issue_id is None and r.venue_id is None
    assert digest_reminder(timer, [], {}, rules=RULES, tz=TZ, issued_at=at, names=NAMES) is None


def test_durations_read_as_the_bureau_writes_them() -> None:
    from services.reminders.domain.texts import duration_zh  # noqa: PLC0415

    assert [duration_zh(timedelta(days=3)), duration_zh(timedelta(hours=36))] == ["3 天", "36 小时"]
    timer = Timer(reminder_id(f.DISTRICT, "no_order", issue_id="I1"), f.DISTRICT, "no_order", 0,
                  T0 + timedelta(days=3), "pending", "I1")  # fmt: skip
    r = issue_reminder(timer, _issue(due_at=None, order_no=None), VENUE, rules=RULES, tz=TZ,
                       issued_at=timer.fire_at, names=NAMES)  # fmt: skip
    assert "问题发现已满 3 天，尚未下发整改交办单" in r.body_zh
    assert "尚未下发交办单" in r.body_zh and "Found 3d ago" in r.body_en


def test_an_items_title_comes_from_the_campaigns_checklist() -> None:
    issue = _issue()
    due = issue.due_at
    assert due is not None
    timer = Timer(reminder_id(f.DISTRICT, "overdue", issue_id="I1", deadline=due), f.DISTRICT,
                  "overdue", 0, due, "pending", "I1", due)  # fmt: skip
    renamed = Names(
        NAMES.districts,
        (ChecklistItem("FM-3F", "三防设施", "病媒生物防制", ("farmers_market",), "major"),),
    )
    r = issue_reminder(timer, issue, VENUE, rules=RULES, tz=TZ, issued_at=due, names=renamed)
    assert "“三防设施”问题" in r.body_zh and "：三防设施" in r.title_zh
    assert "防蝇防鼠防尘" not in r.body_zh + r.title_zh
    # A code the checklist does not list is shown as itself, never dropped.
    r = issue_reminder(timer, _issue(item_code="FM-NEW"), VENUE, rules=RULES, tz=TZ,
                       issued_at=due, names=NAMES)  # fmt: skip
    assert "“FM-NEW”问题" in r.body_zh and "item FM-NEW" in r.body_en
