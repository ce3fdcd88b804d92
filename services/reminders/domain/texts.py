"""What a reminder says: Chinese first, as the bureau writes it, then English.

Every time a person reads is local (the campaign's time zone), and every checklist item and
district is named as the campaign file names it (``Names``). A venue with no registration still
gets its reminder, with the recipients that are known.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from contracts.reminders import Recipient
from services.common.durations import format_duration
from services.common.lifecycle import Issue
from services.common.localtime import local, shown, zone_label
from services.common.overdue import days_overdue

SEVERITY_ZH = {"minor": "一般", "major": "较重", "critical": "严重"}
ROLE_ZH = {
    "first_responsible": "第一责任人",
    "assignee": "整改责任人",
    "officer": "责任干部",
    "deputy_head": "分管领导",
    "head": "主要负责人",
}
ROLE_EN = {
    "first_responsible": "first responsible person",
    "assignee": "assignee",
    "officer": "officer",
    "deputy_head": "deputy head",
    "head": "head",
}
DESCRIPTION_MAX = 200
"""Characters of an issue's description quoted in a reminder (the rest is in the read model)."""


def local_zh(moment: datetime, tz: ZoneInfo) -> str:
    """``2023年3月10日 17:30（北京时间）``: the zone said with every time a person reads."""
    t = local(moment, tz)
    return f"{t.year}年{t.month}月{t.day}日 {t:%H:%M}（{zone_label(tz)}）"


def local_en(moment: datetime, tz: ZoneInfo) -> str:
    """``2023-03-10 17:30 +08:00``."""
    return shown(moment, tz, offset=True)


STOPS = ("。", "！", "？", "!", "?", ".")
"""What already ends a sentence: no 。 after it (a description ending in 。 gave 。。)."""


def sentence(text: str) -> str:
    """``text`` ended with one full stop: a trailing comma or semicolon becomes it."""
    text = text.rstrip().rstrip("，,；;、：:").rstrip()
    return text if text.endswith(STOPS) else text + "。"


def counted(n: int, noun: str) -> str:
    """``1 rebound``, ``2 rebounds``: an English count with its noun."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def overdue_zh(due_at: datetime, now: datetime) -> str:
    """逾期天数 (started days, ``services.common.overdue``): ``3 天``."""
    return f"{days_overdue(due_at, now)} 天"


def overdue_en(due_at: datetime, now: datetime) -> str:
    return counted(days_overdue(due_at, now), "day")


TITLE_ENDINGS = ("领导", "负责人", "局长", "主任", "书记", "科长", "干部")
"""A contact named by a title (the plan names roles: ``分管局领导``), not by a person's name."""


@dataclass(frozen=True, slots=True)
class Person:
    """One person of a reminder, with every role they are addressed in."""

    name: str
    roles: tuple[str, ...]
    phone: str | None

    @property
    def titled(self) -> bool:
        return self.name.endswith(TITLE_ENDINGS)


def people(recipients: Sequence[Recipient]) -> list[Person]:
    """Each person once, in order: the same name with the same phone (or a phone on one side
    only, as an order's assignee has none) is one person, listed with all their roles."""
    found: list[Person] = []
    for r in recipients:
        for n, p in enumerate(found):
            if p.name == r.name and (p.phone is None or r.phone is None or p.phone == r.phone):
                roles = p.roles if r.role in p.roles else (*p.roles, r.role)
                found[n] = Person(p.name, roles, p.phone or r.phone)
                break
        else:
            found.append(Person(r.name, (r.role,), r.phone))
    return found


def who_zh(recipients: Sequence[Recipient]) -> str:
    if not recipients:
        return "暂无登记的责任人，请责任科室核实"

    def one(p: Person) -> str:
        # A title says the role itself: 分管局领导, not 分管局领导（分管领导）.
        said = [] if p.titled else ["兼".join(ROLE_ZH[role] for role in p.roles)]
        said += [p.phone] if p.phone else []
        return p.name + (f"（{'，'.join(said)}）" if said else "")

    return "、".join(one(p) for p in people(recipients))


UNITS_ZH = {"d": "天", "h": "小时", "m": "分钟", "s": "秒"}


def duration_zh(td: timedelta) -> str:
    """``3d`` as the bureau says it: ``3 天``."""
    text = format_duration(td)
    return f"{text[:-1]} {UNITS_ZH[text[-1]]}"


def who_en(recipients: Sequence[Recipient]) -> str:
    if not recipients:
        return "(no responsible person registered yet)"
    return ", ".join(
        f"{p.name} ({' and '.join(ROLE_EN[role] for role in p.roles)})" for p in people(recipients)
    )


ACTION_ZH = {
    "no_order": "问题发现已满 {order_within}，尚未下发整改交办单，请及时下发交办单并明确整改期限。",
    "due_soon": "整改期限即将到期，请抓紧整改，并在期限前申请复查。",
    "overdue": "已到整改期限，问题尚未销号，请立即整改并申请复查。",
    "escalation": "已逾期 {late}，问题仍未销号，请督促立即整改。",
    "look_back_due": "问题已于 {closed}销号，已满 {look_back}，请开展“回头看”复查，防止反弹。",
    "rebound_detected": "该场所同一项目在销号后再次出现问题（反复反弹），请重点督办。",
}
ACTION_EN = {
    "no_order": "Found {order_within} ago and no rectification order issued yet: issue one "
    "with a deadline.",
    "due_soon": "The deadline is near: rectify and ask for a recheck before it.",
    "overdue": "The deadline has passed and the issue is still open: rectify now and ask for "
    "a recheck.",
    "escalation": "Overdue by {late} and still open: see that it is rectified now.",
    "look_back_due": "Closed on {closed}, {look_back} ago: make the look-back visit (回头看).",
    "rebound_detected": "The same item failed again at this venue after it was closed "
    "(rebound): supervise it closely.",
}
TITLE_ZH = {
    "no_order": "【待下发交办单】",
    "due_soon": "【整改即将到期】",
    "overdue": "【整改已逾期】",
    "escalation": "【逾期升级{level}级】",
    "look_back_due": "【回头看到期】",
    "rebound_detected": "【反复反弹】",
}
TITLE_EN = {
    "no_order": "[No order yet]",
    "due_soon": "[Deadline near]",
    "overdue": "[Overdue]",
    "escalation": "[Escalation {level}]",
    "look_back_due": "[Look-back due]",
    "rebound_detected": "[Rebound]",
}


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def issue_texts(
    kind: str,
    level: int,
    issue: Issue,
    *,
    venue_name: str | None,
    item_title: str,
    recipients: Sequence[Recipient],
    fire_at: datetime,
    tz: ZoneInfo,
    words: dict[str, str],
    words_en: dict[str, str],
) -> tuple[str, str, str, str]:
    """(title_zh, body_zh, title_en, body_en) of an issue's reminder; ``item_title`` is the
    checklist's title of the issue's item."""
    venue = venue_name or f"场所 {issue.venue_id}（未登记）"
    venue_en = venue_name or f"venue {issue.venue_id} (not registered)"
    item = item_title
    due = issue.due_at if issue.due_at is not None else fire_at
    fill = {**words, "late": overdue_zh(due, fire_at), "level": str(level)}
    fill_en = {**words_en, "late": overdue_en(due, fire_at), "level": str(level)}
    if issue.closed_at is not None:
        fill["closed"] = local_zh(issue.closed_at, tz)
        fill_en["closed"] = local_en(issue.closed_at, tz)
    due_zh = f"，整改期限 {local_zh(issue.due_at, tz)}" if issue.due_at is not None else ""
    due_en = f", due {local_en(issue.due_at, tz)}" if issue.due_at is not None else ""
    title_zh = clip(TITLE_ZH[kind].format(**fill) + f"{venue}：{item}{due_zh}", 128)
    title_en = clip(TITLE_EN[kind].format(**fill_en) + f" {venue_en}: {issue.item_code}{due_en}",
                    128)  # fmt: skip
    what = f"：{clip(issue.description, DESCRIPTION_MAX)}" if issue.description else ""
    order_zh = f"交办单号 {issue.order_no}" if issue.order_no else "尚未下发交办单"
    body_zh = (
        sentence(
            f"{venue}（{issue.venue_id}）“{item}”问题（编号 {issue.issue_id}，"
            f"{SEVERITY_ZH.get(issue.severity, issue.severity)}）{what}"
        )
        + f"{order_zh}{due_zh}。{ACTION_ZH[kind].format(**fill)}"
        f"请以下人员处理：{who_zh(recipients)}。"
    )
    order_en = f"order {issue.order_no}" if issue.order_no else "no order yet"
    body_en = (
        f"{venue_en} ({issue.venue_id}), item {issue.item_code} ({issue.severity}), issue "
        f"{issue.issue_id}; {order_en}{due_en}. {ACTION_EN[kind].format(**fill_en)} "
        f"To act: {who_en(recipients)}."
    )
    return title_zh, clip(body_zh, 2000), title_en, clip(body_en, 2000)
