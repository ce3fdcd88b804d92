"""What a robot shows: one reminder in its own markdown message, or, when more are waiting than
the robot's budget allows, several merged into one markdown list within the robot's size limit.

The text is the reminder's own Chinese (``title_zh``, ``body_zh``), with the mobile numbers of
the people who must act as @-mentions (DingTalk turns ``@<mobile>`` into a mention when the number
is in ``at.atMobiles``; WeCom's markdown can only mention user ids, so there the number is shown).
A landline (``0518-82310103``) is no one's DingTalk account: it stays in the text, unmentioned.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from uuid import UUID

from contracts.reminders import Reminder
from services.notifier.domain.model import Pending

ELLIPSIS = "…"


@dataclass(frozen=True, slots=True)
class RobotMessage:
    title: str
    text: str
    """Markdown."""
    phones: tuple[str, ...]
    reminder_ids: tuple[UUID, ...]

    @property
    def merged(self) -> bool:
        return len(self.reminder_ids) > 1


@dataclass(frozen=True, slots=True)
class RobotFormat:
    """How big a robot's message may be, measured the way the robot measures it (each robot's
    adapter says: DingTalk the whole request body, WeCom the markdown content)."""

    limit_bytes: int
    measure: Callable[[RobotMessage], int]

    def fits(self, message: RobotMessage) -> bool:
        return self.measure(message) <= self.limit_bytes


MOBILE = re.compile(r"1[3-9][0-9]{9}")
"""A mainland China mobile number, 11 digits: what DingTalk can @-mention."""


def mobile(phone: str) -> str | None:
    """``phone`` as the 11 digits DingTalk mentions (``+86 138-0000-0001`` is ``13800000001``);
    ``None`` for a landline or anything else that is no mobile number."""
    digits = re.sub(r"[\s()-]", "", phone)
    for prefix in ("+86", "0086"):
        digits = digits.removeprefix(prefix)
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    return digits if MOBILE.fullmatch(digits) else None


def phones_of(reminders: Sequence[Reminder]) -> tuple[str, ...]:
    """The mobile numbers of the people who must act, each once: what the message @-mentions."""
    seen: dict[str, None] = {}
    for r in reminders:
        for person in r.recipients:
            number = mobile(person.phone) if person.phone else None
            if number is not None:
                seen.setdefault(number, None)
    return tuple(seen)


def _mentions(phones: Sequence[str]) -> str:
    return " ".join(f"@{p}" for p in phones)


def single(reminder: Reminder, fmt: RobotFormat) -> RobotMessage:
    """One reminder: its title as a heading, its text, and who must act; the text is cut (with
    an ellipsis) when the message would not fit."""
    phones = phones_of([reminder])
    mentions = _mentions(phones)

    def message(body: str) -> RobotMessage:
        text = f"#### {reminder.title_zh}\n\n{body}"
        if mentions:
            text += f"\n\n{mentions}"
        return RobotMessage(reminder.title_zh, text, phones, (reminder.reminder_id,))

    body = "\n\n".join(line for line in reminder.body_zh.splitlines() if line.strip())
    whole = message(body)
    if fmt.fits(whole):
        return whole
    low, high = 0, len(body)  # the longest start of the text that fits
    while low < high:
        mid = (low + high + 1) // 2
        if fmt.fits(message(body[:mid] + ELLIPSIS)):
            low = mid
        else:
            high = mid - 1
    return message(body[:low] + ELLIPSIS)


def merged(reminders: Sequence[Reminder], fmt: RobotFormat) -> RobotMessage:
    """As many of ``reminders`` (in order, at least one) as fit, as one markdown list."""

    def message(items: Sequence[Reminder]) -> RobotMessage:
        n = len(items)
        lines = [f"#### 创卫提醒：{n} 条（合并发送）", ""]
        for i, r in enumerate(items, 1):
            mentions = _mentions(phones_of([r]))
            lines.append(f"{i}. {r.title_zh}" + (f" {mentions}" if mentions else ""))
        title = f"创卫提醒 {n} 条"
        return RobotMessage(
            title, "\n".join(lines), phones_of(items), tuple(r.reminder_id for r in items)
        )

    taken = 1
    while taken < len(reminders) and fmt.fits(message(reminders[: taken + 1])):
        taken += 1
    if taken == 1:
        return single(reminders[0], fmt)
    return message(reminders[:taken])


def plan(pending: Sequence[Pending], free: int, per_minute: int, fmt: RobotFormat) -> RobotMessage:
    """The next message to a robot that may take ``free`` more in its window.

    Reminders go one per message while the waiting ones fit in the budget with half of it
    kept in reserve. Beyond that (a burst), everything waiting is merged, oldest first, into as
    few messages as the size limit allows, so that even 500 at once reach the robot within two
    windows instead of queueing for many (the service paces such messages while the budget is
    down to its reserve: ``Budget.paced_start``).
    """
    assert pending, "nothing to plan"
    reserve = per_minute // 2  # Budget.reserve
    if len(pending) == 1 or len(pending) <= free - reserve:
        return single(pending[0].reminder, fmt)
    return merged([p.reminder for p in pending], fmt)
