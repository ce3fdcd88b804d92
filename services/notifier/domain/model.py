"""What the notifier works with: reminders as the stream delivered them, deliveries waiting
for a target, and what became of a message sent to one. Pure data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, TypeAlias
from uuid import UUID

from contracts.reminders import Reminder


@dataclass(slots=True)
class StreamReminder:
    """A valid reminder and where it sits in ``CW_REMINDERS`` (what the consumer kit applies)."""

    seq: int
    reminder: Reminder
    raw: bytes
    subject: str
    headers: Mapping[str, str] | None = None

    @property
    def message_id(self) -> UUID:
        return self.reminder.reminder_id


@dataclass(frozen=True, slots=True)
class Pending:
    """A reminder not yet delivered to one target (one row of the delivery ledger)."""

    reminder: Reminder
    seq: int
    """Its sequence in ``CW_REMINDERS``: deliveries go oldest first."""
    subject: str
    raw: bytes
    """The reminder's bytes as published: a webhook gets them, a dead letter keeps them."""

    @property
    def reminder_id(self) -> UUID:
        return self.reminder.reminder_id


@dataclass(frozen=True, slots=True)
class Delivered:
    """The target took the message."""


@dataclass(frozen=True, slots=True)
class TryAgain:
    """A fault that can pass (HTTP 429 or 5xx, a time-out, a lost connection)."""

    reason: str
    retry_after_s: float | None = None
    """What the target asked for (``Retry-After``), if it did."""


@dataclass(frozen=True, slots=True)
class Throttled:
    """A robot refused for sending too fast (DingTalk 130101, WeCom 45009)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Refused:
    """The target will never take this message (a 4xx, a signature, keyword or IP refusal):
    its reminders go to the dead letters with the reason."""

    reason: str
    kind: str
    """The reason's class, a metric label and ``Cw-Dlq-Kind`` (``robot_refused``, ``http_4xx``)."""


SendResult: TypeAlias = Delivered | TryAgain | Throttled | Refused
Outcome: TypeAlias = Literal["delivered", "retried", "throttled", "dead_lettered"]
"""What became of one (reminder, target) delivery in one attempt: the metric's ``outcome``."""


def outcome_of(result: SendResult) -> Outcome:
    if isinstance(result, Delivered):
        return "delivered"
    if isinstance(result, TryAgain):
        return "retried"
    if isinstance(result, Throttled):
        return "throttled"
    return "dead_lettered"


@dataclass(frozen=True, slots=True)
class Recorded:
    """What one committed batch of ``CW_REMINDERS`` did."""

    checkpoint: int
    reminders: int
    deliveries: int
    """Deliveries added (a reminder already recorded adds none)."""
