"""Every kind of reminder read as the bureau writes it: one full stop, each person once (a first
responsible person who is also the order's assignee too), a title shown as a title, 北京时间
with every time, @-mentions for mobile numbers only (DingTalk cannot mention a landline), and
English counts in the singular for one."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from contracts.reminders import Reminder, reminder_id
from services.common.campaign import Contact, ReminderRules, load_campaign
from services.common.lifecycle import Issue
from services.notifier.adapters import dingtalk, wecom
from services.notifier.domain.messages import merged, mobile, phones_of, single
from services.reminders.domain.firing import digest_reminder, issue_reminder
from services.reminders.domain.model import Timer, Venue
from tests import factories as f

pytestmark = pytest.mark.unit
TZ = ZoneInfo("Asia/Shanghai")
V = "LY-FM-007"
DUE = f.at("2023-03-10 17:30")
LANDLINE = "0518-82310103"
# The first responsible person is also the order's assignee; the officer has a landline; the
# bureau's contacts are the plan's titles, without a name or a phone.
VENUE = Venue(f.DISTRICT, V, "海连路农贸市场", "王建国", "138-0000-0001", "刘洋", LANDLINE)
RULES = ReminderRules(deputy_head=Contact("分管局领导"), head=Contact("局主要领导"))
NAMES = load_campaign().names
KINDS = [
    ("no_order", 0), ("due_soon", 1), ("due_soon", 2), ("overdue", 0), ("escalation", 1),
    ("escalation", 2), ("escalation", 3), ("look_back_due", 0), ("rebound_detected", 0),
]  # fmt: skip


def _issue(kind: str) -> Issue:
    closed = kind == "look_back_due"
    return Issue(
        district=f.DISTRICT, issue_id="I1", venue_id=V, phase="re_review", item_code="FM-3F",
        category="FM", severity="major", description="熟食区未设防蝇设施。",
        found_at=f.at("2023-03-01 10:00"), due_at=None if kind == "no_order" else DUE,
        order_no=None if kind == "no_order" else "LY-ZG-2023-031", assignee="王建国",
        closed_at=f.at("2023-03-09 10:00") if closed else None, rebound=kind == "rebound_detected",
    )  # fmt: skip


def _reminder(kind: str, level: int) -> Reminder:
    fire = DUE + timedelta(days=3 * level, minutes=1) if kind == "escalation" else DUE
    timer = Timer(reminder_id(f.DISTRICT, kind, issue_id="I1", level=level, deadline=DUE),
                  f.DISTRICT, kind, level, fire, "pending", "I1", DUE)  # fmt: skip
    return issue_reminder(
        timer, _issue(kind), VENUE, rules=RULES, tz=TZ, issued_at=fire, names=NAMES
    )


def _digest() -> Reminder:
    at = f.at("2023-03-12 08:30")
    timer = Timer(reminder_id(f.DISTRICT, "digest", local_date=at.date()), f.DISTRICT, "digest",
                  0, at, "pending")  # fmt: skip
    r = digest_reminder(timer, [_issue("rebound_detected")], {(f.DISTRICT, V): VENUE},
                        rules=RULES, tz=TZ, issued_at=at, names=NAMES)  # fmt: skip
    assert r is not None
    return r


EVERY = [pytest.param(lambda k=k, n=n: _reminder(k, n), id=f"{k}-{n}") for k, n in KINDS] + [
    pytest.param(_digest, id="digest")
]
TIME = re.compile(r"\d{4}年\d{1,2}月\d{1,2}日 \d{2}:\d{2}")


@pytest.mark.parametrize("make", EVERY)
def test_every_kind_reads_as_the_bureau_writes(make: object) -> None:
    r: Reminder = make()  # type: ignore[operator]
    for text in (r.title_zh, r.body_zh):
        assert "。。" not in text and "。，" not in text, text
        # Each time a person reads says its zone.
        for m in TIME.finditer(text):
            assert text[m.end() :].startswith("（北京时间）"), text
    # Each person once in the list of who must act, a title as itself.
    who = re.search(r"请以下人员(?:处理|督办)：(.*)。$", r.body_zh)
    assert who is not None, r.body_zh
    names = [re.sub(r"（.*）$", "", person) for person in who.group(1).split("、")]
    assert len(names) == len(set(names)), who.group(1)
    assert "分管局领导（" not in r.body_zh and "局主要领导（" not in r.body_zh
    assert len({p.name for p in r.recipients}) == len(r.recipients)
    # English: one rebound, one day; times with their offset.
    assert not re.search(r"\b1 (rebounds|days)\b", r.body_en), r.body_en
    assert not re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}(?! \+08:00)", r.body_en), r.body_en


@pytest.mark.parametrize("make", EVERY)
def test_only_mobile_numbers_are_mentioned(make: object) -> None:
    r: Reminder = make()  # type: ignore[operator]
    for fmt in (dingtalk.FORMAT, wecom.FORMAT):
        m = single(r, fmt)
        assert all(mobile(p) == p for p in m.phones)
        assert "@0518" not in m.text and f"@{LANDLINE}" not in m.text
        for p in m.phones:
            assert m.text.count(f"@{p}") == 1
    body = dingtalk.payload(single(r, dingtalk.FORMAT))
    assert LANDLINE.encode() not in body.split(b'"at"')[1]


def test_the_first_responsible_assignee_is_one_person_with_both_roles() -> None:
    r = _reminder("due_soon", 1)
    assert "王建国（第一责任人兼整改责任人，138-0000-0001）" in r.body_zh
    assert r.body_zh.count("王建国") == 1
    assert [(p.role, p.name, p.phone) for p in r.recipients] == [
        ("first_responsible", "王建国", "138-0000-0001")
    ]
    assert "王建国 (first responsible person and assignee)" in r.body_en
    assert phones_of([r]) == ("13800000001",)


def test_a_description_ending_in_a_full_stop_gets_no_second() -> None:
    r = _reminder("overdue", 0)
    assert "：熟食区未设防蝇设施。交办单号 LY-ZG-2023-031" in r.body_zh


def test_a_title_without_name_or_phone_is_shown_as_the_title() -> None:
    r = _reminder("escalation", 3)
    assert r.body_zh.endswith("请以下人员处理：分管局领导、局主要领导。")
    assert "分管局领导 (deputy head)" in r.body_en
    assert single(r, dingtalk.FORMAT).phones == ()


def test_english_counts_one_rebound() -> None:
    assert "1 overdue, 1 rebound." in _digest().body_en
    fire = DUE + timedelta(hours=5)
    timer = Timer(reminder_id(f.DISTRICT, "escalation", issue_id="I1", level=1, deadline=DUE),
                  f.DISTRICT, "escalation", 1, fire, "pending", "I1", DUE)  # fmt: skip
    r = issue_reminder(
        timer, _issue("escalation"), VENUE, rules=RULES, tz=TZ, issued_at=fire, names=NAMES
    )
    assert "Overdue by 1 day and still open" in r.body_en
    assert "已逾期 1 天，" in r.body_zh


def test_mobile_numbers_as_dingtalk_mentions_them() -> None:
    assert [mobile(p) for p in ("13800000001", "+86 138-0000-0001", "0086 13800000001",
                                 "8613800000001", LANDLINE, "82310103", "12345678901")] == [
        "13800000001", "13800000001", "13800000001", "13800000001", None, None, None,
    ]  # fmt: skip


def test_a_merged_message_mentions_mobiles_only() -> None:
    m = merged([_reminder("overdue", 0), _reminder("escalation", 2)], dingtalk.FORMAT)
    assert m.merged and m.phones == ("13800000001",) and "@0518" not in m.text


@pytest.mark.parametrize("make", EVERY)
def test_the_json_a_partner_reads_is_on_the_campaigns_clock(make: object) -> None:
    r: Reminder = make()  # type: ignore[operator]
    sent = json.loads(r.model_dump_json())
    times = [sent[k] for k in ("due_at", "fire_at", "issued_at") if sent[k] is not None]
    assert times and all(t.endswith("+08:00") for t in times), times
    assert Reminder.model_validate_json(r.model_dump_json()).fire_at == r.fire_at


def test_instants_read_in_utc_are_published_on_the_campaigns_clock() -> None:
    """The store hands the reminders service UTC (asyncpg); the JSON says +08:00."""
    utc = ZoneInfo("UTC")
    due, fire = DUE.astimezone(utc), (DUE + timedelta(days=3)).astimezone(utc)
    timer = Timer(reminder_id(f.DISTRICT, "escalation", issue_id="I1", level=1, deadline=due),
                  f.DISTRICT, "escalation", 1, fire, "pending", "I1", due)  # fmt: skip
    issue = _issue("escalation")
    r = issue_reminder(timer, issue, VENUE, rules=RULES, tz=TZ, issued_at=fire, names=NAMES)
    sent = json.loads(r.model_dump_json())
    assert (sent["due_at"], sent["fire_at"], sent["issued_at"]) == (
        "2023-03-10T17:30:00+08:00", "2023-03-13T17:30:00+08:00", "2023-03-13T17:30:00+08:00",
    )  # fmt: skip
    assert r.reminder_id == timer.reminder_id and r.due_at == due  # the same instant
