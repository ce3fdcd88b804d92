"""What a due timer becomes: a reminder (the contract's ``Reminder``) or a skip, and who gets it.

Recipients by kind (``level`` in brackets): ``no_order`` the officer; ``due_soon`` the first
responsible person and the order's assignee; ``overdue`` and ``escalation`` [1] the first
responsible person and the officer; ``escalation`` [2] the officer and the deputy head, [3 and
up] the deputy head and the head; ``look_back_due`` the officer; ``rebound_detected`` the officer
and the deputy head; ``digest`` the district's officers and the deputy head. Who is not known (a
venue with no registration, a contact the campaign file does not name) is left out; a person
in two roles (a first responsible person who is also the order's assignee) is one recipient, and
the text names both roles.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from contracts.reminders import Recipient, Reminder
from services.common.campaign import Contact, Names, ReminderRules
from services.common.durations import format_duration
from services.common.lifecycle import Issue
from services.common.localtime import local
from services.reminders.domain.model import Timer, Venue
from services.reminders.domain.texts import (
    clip,
    counted,
    duration_zh,
    issue_texts,
    local_en,
    local_zh,
    overdue_zh,
    people,
    who_en,
    who_zh,
)

DIGEST_ITEMS = 5
"""The most overdue items a digest lists."""
DIGEST_OFFICERS = 20


def _local(moment: datetime | None, tz: ZoneInfo) -> datetime | None:
    """An instant on the campaign's clock: the reminder's JSON says ``+08:00`` to a partner."""
    return None if moment is None else local(moment, tz)


def _contact(role: str, contact: Contact | None) -> list[Recipient]:
    if contact is None:
        return []
    return [Recipient(role=role, name=contact.name, phone=contact.phone)]  # type: ignore[arg-type]


def _first_responsible(venue: Venue | None) -> list[Recipient]:
    if venue is None:
        return []
    return [
        Recipient(
            role="first_responsible",
            name=venue.first_responsible_name,
            phone=venue.first_responsible_phone,
        )
    ]


def _officer(venue: Venue | None) -> list[Recipient]:
    if venue is None or venue.officer_name is None:
        return []
    return [Recipient(role="officer", name=venue.officer_name, phone=venue.officer_phone)]


def recipients(
    kind: str, level: int, issue: Issue, venue: Venue | None, rules: ReminderRules
) -> tuple[Recipient, ...]:
    """Who a reminder goes to, each person once (in the first role they are addressed in)."""
    return once(addressed(kind, level, issue, venue, rules))


def once(found: Sequence[Recipient]) -> tuple[Recipient, ...]:
    """Each person once: a first responsible person who is also the order's assignee gets one
    message, and the texts name both roles (``texts.people``)."""
    return tuple(
        Recipient(role=p.roles[0], name=p.name, phone=p.phone)  # type: ignore[arg-type]
        for p in people(found)
    )


def addressed(
    kind: str, level: int, issue: Issue, venue: Venue | None, rules: ReminderRules
) -> list[Recipient]:
    """Everyone a reminder of ``kind`` addresses, by role (a person may come twice)."""
    deputy = _contact("deputy_head", rules.deputy_head)
    head = _contact("head", rules.head)
    if kind in ("no_order", "look_back_due"):
        found = _officer(venue)
    elif kind == "due_soon":
        assignee = [Recipient(role="assignee", name=issue.assignee)] if issue.assignee else []
        found = _first_responsible(venue) + assignee
    elif kind == "overdue" or (kind == "escalation" and level <= 1):
        found = _first_responsible(venue) + _officer(venue)
    elif kind == "escalation" and level == 2:
        found = _officer(venue) + deputy
    elif kind == "escalation":
        found = deputy + head
    elif kind == "rebound_detected":
        found = _officer(venue) + deputy
    else:
        raise ValueError(f"not an issue's reminder kind: {kind}")
    return found


def issue_reminder(
    timer: Timer,
    issue: Issue,
    venue: Venue | None,
    *,
    rules: ReminderRules,
    tz: ZoneInfo,
    issued_at: datetime,
    names: Names,
) -> Reminder:
    """The reminder a due timer of an issue sends, from the issue as it stands; its item by the
    title ``names`` (the campaign's checklist) gives it."""
    roles = addressed(timer.kind, timer.level, issue, venue, rules)
    who = once(roles)
    words = {
        "order_within": duration_zh(rules.order_within),
        "look_back": duration_zh(rules.look_back_after),
    }
    words_en = {
        "order_within": format_duration(rules.order_within),
        "look_back": format_duration(rules.look_back_after),
    }
    venue_name = venue.name if venue is not None else None
    title_zh, body_zh, title_en, body_en = issue_texts(
        timer.kind, timer.level, issue,
        venue_name=venue_name, item_title=names.item(issue.item_code), recipients=roles,
        fire_at=timer.fire_at, tz=tz, words=words, words_en=words_en,
    )  # fmt: skip
    return Reminder(
        schema_version=1,
        reminder_id=timer.reminder_id,
        kind=timer.kind,  # type: ignore[arg-type]
        level=timer.level,
        district=issue.district,
        venue_id=issue.venue_id,
        venue_name=venue_name,
        issue_id=issue.issue_id,
        item_code=issue.item_code,
        severity=issue.severity,  # type: ignore[arg-type]
        phase=issue.phase,
        order_no=issue.order_no,
        due_at=_local(timer.deadline or issue.due_at, tz),
        fire_at=local(timer.fire_at, tz),
        issued_at=local(issued_at, tz),
        recipients=who,
        title_zh=title_zh,
        body_zh=body_zh,
        title_en=title_en,
        body_en=body_en,
    )


def digest_reminder(
    timer: Timer,
    open_issues: Sequence[Issue],
    venues: Mapping[tuple[str, str], Venue],
    *,
    rules: ReminderRules,
    tz: ZoneInfo,
    issued_at: datetime,
    names: Names,
) -> Reminder | None:
    """A district's daily digest as of the timer's moment; ``None`` when nothing is open. The
    district and the items are named as ``names`` (the campaign file) names them."""
    if not open_issues:
        return None
    now = timer.fire_at
    today = now.astimezone(tz).date()
    overdue = sorted(
        (i for i in open_issues if i.due_at is not None and i.due_at < now),
        key=lambda i: (i.due_at, i.issue_id),
    )
    due_today = sum(
        1 for i in open_issues if i.due_at is not None and i.due_at.astimezone(tz).date() == today
    )
    rebounds = sum(1 for i in open_issues if i.rebound)
    officers: dict[tuple[str, str | None], Recipient] = {}
    for i in open_issues:
        v = venues.get((i.district, i.venue_id))
        if v is not None and v.officer_name is not None:
            key = (v.officer_name, v.officer_phone)
            officers.setdefault(key, Recipient(role="officer", name=key[0], phone=key[1]))
    roles = [
        *list(officers.values())[:DIGEST_OFFICERS],
        *_contact("deputy_head", rules.deputy_head),
    ]
    who = once(roles)
    counts_zh = (
        f"在办问题 {len(open_issues)} 件，今日到期 {due_today} 件，已逾期 {len(overdue)} 件，"
        f"反复反弹 {rebounds} 件"
    )
    lines_zh, lines_en = [], []
    for n, i in enumerate(overdue[:DIGEST_ITEMS], start=1):
        assert i.due_at is not None
        v = venues.get((i.district, i.venue_id))
        name = v.name if v else f"场所 {i.venue_id}（未登记）"
        person = f"，第一责任人 {v.first_responsible_name}" if v else ""
        phone = f"（{v.first_responsible_phone}）" if v and v.first_responsible_phone else ""
        order = f"交办单号 {i.order_no}，" if i.order_no else ""
        lines_zh.append(
            f"{n}. {name}“{names.item(i.item_code)}”（{i.issue_id}），{order}"
            f"期限 {local_zh(i.due_at, tz)}，已逾期 {overdue_zh(i.due_at, now)}{person}{phone}"
        )
        lines_en.append(
            f"{n}. {v.name if v else i.venue_id}: {i.item_code} ({i.issue_id}), due "
            f"{local_en(i.due_at, tz)}" + (f", {v.first_responsible_name}" if v else "")
        )
    date_zh = f"{today.year}年{today.month}月{today.day}日"
    district = names.district(timer.district)
    body_zh = f"截至 {local_zh(now, tz)}，辖区 {district} {counts_zh}。"
    if lines_zh:
        body_zh += "逾期最久的问题：\n" + "\n".join(lines_zh) + "\n"
    body_zh += f"请以下人员督办：{who_zh(roles)}。"
    body_en = (
        f"As of {local_en(now, tz)}, district {district}: {len(open_issues)} open, "
        f"{due_today} due today, {len(overdue)} overdue, {counted(rebounds, 'rebound')}."
    )
    if lines_en:
        body_en += " Most overdue:\n" + "\n".join(lines_en) + "\n"
    body_en += f" To supervise: {who_en(roles)}."
    return Reminder(
        schema_version=1,
        reminder_id=timer.reminder_id,
        kind="digest",
        level=0,
        district=timer.district,
        venue_id=None,
        venue_name=None,
        issue_id=None,
        item_code=None,
        severity=None,
        phase=None,
        order_no=None,
        due_at=None,
        fire_at=local(timer.fire_at, tz),
        issued_at=local(issued_at, tz),
        recipients=who,
        title_zh=clip(f"【每日汇总】辖区 {district} {date_zh}：{counts_zh}", 128),
        body_zh=clip(body_zh, 2000),
        title_en=clip(f"[Daily digest] district {district} {today.isoformat()}", 128),
        body_en=clip(body_en, 2000),
    )
