"""The reminder contract: what the reminders service publishes on ``cw.reminders.>``.

A reminder tells named people that something about an issue (or a district's day) needs them:
a rectification order to issue, a deadline near or passed, an escalation, a look-back visit due,
a rebound. Notification consumers (work-chat robots, SMS gateways, other systems) turn it into an
alert. The Chinese text comes first and is what the bureau reads; the English text is for
developers and logs.

``reminder_id`` is deterministic (:func:`reminder_id`), so a reminder computed twice (after a
crash, a restart or a rebuild) is the same message with the same ``Nats-Msg-Id``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Literal, TypeAlias, get_args

from pydantic import Field

from contracts.events import (
    ContractModel,
    DistrictCode,
    Identifier,
    ItemCode,
    Moment,
    Phone,
    Severity,
    Text64,
    Text128,
    Text2000,
    Uuid,
    VenueId,
)
from contracts.rules import Integral, VersionNumber

REMINDER_SCHEMA_VERSION = 1

ReminderKind: TypeAlias = Literal[
    "no_order",
    "due_soon",
    "overdue",
    "escalation",
    "look_back_due",
    "rebound_detected",
    "digest",
]
REMINDER_KINDS: tuple[str, ...] = get_args(ReminderKind)

RecipientRole: TypeAlias = Literal[
    "first_responsible", "assignee", "officer", "deputy_head", "head"
]
RECIPIENT_ROLES: tuple[str, ...] = get_args(RecipientRole)

REMINDER_NAMESPACE = uuid.UUID("5f1d6c1e-6b7e-4c1a-9a53-2f3c0e8b7d41")
"""The UUIDv5 namespace of ``reminder_id``: fixed forever, or every id would change."""


class Recipient(ContractModel):
    """Who must act on a reminder, in which role; the phone is there for an @-mention or SMS."""

    role: RecipientRole = Field(
        description="first_responsible (第一责任人, the legal representative), assignee (the "
        "order's assignee), officer (the bureau officer in charge), deputy_head (分管领导), "
        "head (主要负责人).",
        examples=["first_responsible"],
    )
    name: Text64 = Field(description="Full name.", examples=["王建国"])
    phone: Phone | None = Field(default=None, description="Phone number.", examples=["13800000000"])


class Reminder(ContractModel):
    """One reminder. Fields that do not apply (``issue_id`` of a digest) are null."""

    schema_version: Annotated[Literal[1], VersionNumber()] = Field(
        description="The reminder contract's version.", examples=[1]
    )
    reminder_id: Uuid = Field(
        description="Deterministic UUIDv5 of (district, issue, kind, level, deadline), or of "
        "(district, digest, local date); also the Nats-Msg-Id and a webhook's Idempotency-Key."
    )
    kind: ReminderKind = Field(description="What the reminder is about.", examples=["overdue"])
    level: Annotated[int, Integral()] = Field(
        ge=0,
        le=100,
        description="0 for kinds with one reminder; due_soon: the position in the campaign's "
        "due_soon list (1 = earliest); escalation: 1, 2, 3, ...",
        examples=[0],
    )
    district: DistrictCode = Field(description="Administrative code.", examples=["320703"])
    venue_id: VenueId | None = Field(description="The venue; null in a digest.")
    venue_name: Text128 | None = Field(
        description="The venue's registered name; null when unregistered or a digest."
    )
    issue_id: Identifier | None = Field(description="The issue; null in a digest.")
    item_code: ItemCode | None = Field(description="Checklist item of the issue.")
    severity: Severity | None = Field(description="The issue's severity.")
    phase: Text64 | None = Field(
        description="The phase the issue was found in (a campaign phase, or outside)."
    )
    order_no: Text64 | None = Field(description="The rectification order (交办单) number.")
    due_at: Moment | None = Field(description="The deadline in force.")
    fire_at: Moment = Field(description="When the reminder was due.")
    issued_at: Moment = Field(description="When the reminders service published it.")
    recipients: tuple[Recipient, ...] = Field(description="Who must act, as far as known.")
    title_zh: Text128 = Field(description="Title in Simplified Chinese.")
    body_zh: Text2000 = Field(description="Text in Simplified Chinese, as the bureau writes it.")
    title_en: Text128 = Field(description="Title in English.")
    body_en: Text2000 = Field(description="Text in English.")


def reminder_id(
    district: str,
    kind: str,
    *,
    issue_id: str | None = None,
    level: int = 0,
    deadline: datetime | None = None,
    local_date: date | None = None,
) -> uuid.UUID:
    """The id of a reminder: the same inputs always give the same id."""
    if kind == "digest":
        key = f"{district}|digest|{local_date.isoformat() if local_date else ''}"
    else:
        stamp = deadline.astimezone(UTC).isoformat() if deadline else ""
        key = f"{district}|{issue_id}|{kind}|{level}|{stamp}"
    return uuid.uuid5(REMINDER_NAMESPACE, key)


def reminder_subject(district: str, venue_id: str | None, kind: str) -> str:
    """``cw.reminders.<district>.<venue_id>.<kind>``, or ``cw.reminders.<district>.digest``."""
    if kind == "digest" or venue_id is None:
        return f"cw.reminders.{district}.digest"
    return f"cw.reminders.{district}.{venue_id}.{kind}"


__all__ = [
    "RECIPIENT_ROLES",
    "REMINDER_KINDS",
    "REMINDER_SCHEMA_VERSION",
    "Recipient",
    "RecipientRole",
    "Reminder",
    "ReminderKind",
    "reminder_id",
    "reminder_subject",
]
