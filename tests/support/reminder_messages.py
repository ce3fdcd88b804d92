"""Reminders for the notifier's tests, as the reminders service publishes them (the reminders
service's own test helpers are in reminders.py)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from nats.js import JetStreamContext

from contracts.reminders import Recipient, Reminder, reminder_id, reminder_subject
from contracts.wire import MSG_ID

DISTRICT = "320703"
FIRE_AT = datetime(2023, 4, 1, 10, 0, tzinfo=UTC)


def reminder(
    n: int,
    *,
    kind: str = "overdue",
    district: str = DISTRICT,
    venue_id: str = "LY-FM-007",
    phones: tuple[str, ...] = ("13800000000", "13900000001"),
    body_zh: str | None = None,
    title_zh: str | None = None,
) -> Reminder:
    """Reminder number ``n``: its title says ``#n``, so that a robot's text shows which came."""
    digest = kind == "digest"
    issue = None if digest else f"ISS-{n:05d}"
    due_at = None if digest else FIRE_AT - timedelta(days=1)
    roles = ("first_responsible", "officer")
    recipients = tuple(
        Recipient(role=roles[i % 2], name=f"负责人{i}", phone=phone)  # type: ignore[arg-type]
        for i, phone in enumerate(phones)
    )
    return Reminder(
        schema_version=1,
        reminder_id=reminder_id(
            district,
            kind,
            issue_id=issue,
            level=0,
            deadline=due_at,
            local_date=FIRE_AT.date() + timedelta(days=n) if digest else None,
        ),
        kind=kind,  # type: ignore[arg-type]
        level=0,
        district=district,
        venue_id=None if digest else venue_id,
        venue_name=None if digest else "连云区测试农贸市场",
        issue_id=issue,
        item_code=None if digest else "FM-3F",
        severity=None if digest else "major",
        phase="re_review",
        order_no=None if digest else f"JB-2023-{n:05d}",
        due_at=due_at,
        fire_at=FIRE_AT,
        issued_at=FIRE_AT,
        recipients=recipients,
        title_zh=title_zh or f"整改逾期 #{n}：连云区测试农贸市场",
        body_zh=body_zh
        or f"问题 FM-3F（防蝇防鼠）交办单 JB-2023-{n:05d} 已逾期 1 天。\n请第一责任人立即整改。",
        title_en=f"Overdue #{n}",
        body_en="The rectification deadline has passed.",
    )


def wire(r: Reminder) -> bytes:
    return r.model_dump_json().encode()


def subject(r: Reminder) -> str:
    return reminder_subject(r.district, r.venue_id, r.kind)


async def publish(js: JetStreamContext, reminders: Iterable[Reminder]) -> None:
    """Into ``CW_REMINDERS`` as the reminders service does: ``Nats-Msg-Id = reminder_id``."""
    for r in reminders:
        await js.publish(subject(r), wire(r), headers={MSG_ID: str(r.reminder_id)})
