"""What the notifier needs from the world; adapters implement these, fakes too."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol
from uuid import UUID

from services.consumer.model import Tracked
from services.notifier.domain.budget import Attempt
from services.notifier.domain.messages import RobotFormat, RobotMessage
from services.notifier.domain.model import Outcome, Pending, Refused, SendResult, StreamReminder
from services.notifier.domain.targets import Target


class Ledger(Protocol):
    """The deliveries and attempts (PostgreSQL): every (reminder, target) delivery is recorded,
    and so is every message sent, so that nothing is sent twice and no budget is exceeded, also
    across a restart."""

    async def checkpoint(self) -> int:
        """The last ``CW_REMINDERS`` sequence whose deliveries are recorded."""
        ...

    async def tracked(self) -> Tracked:
        """The checkpoint and the id of the reminder at that sequence."""
        ...

    async def record(
        self,
        reminders: Sequence[StreamReminder],
        targets: Sequence[Target],
        through_seq: int,
        through_id: str | None = None,
    ) -> int:
        """Record a delivery per reminder and matching target, and move the checkpoint (and the
        id of its reminder, ``through_id``), in one transaction; a reminder already recorded
        adds nothing. Returns deliveries added."""
        ...

    async def pending(self, target: str, limit: int) -> list[Pending]:
        """Deliveries to ``target`` not yet done, oldest first."""
        ...

    async def attempts(self, target: str, since: datetime) -> list[Attempt]:
        """Messages sent to ``target`` that started after ``since``."""
        ...

    async def begin(self, target: str, reminder_ids: Sequence[UUID], started_at: datetime) -> int:
        """Record a message about to be sent (it counts against the budget from now on, even
        if the process dies with it in flight); returns its attempt id."""
        ...

    async def finish(
        self,
        target: str,
        attempt_id: int,
        reminder_ids: Sequence[UUID],
        *,
        outcome: Outcome,
        detail: str,
        finished_at: datetime,
    ) -> None:
        """Record what became of the message; ``delivered`` and ``dead_lettered`` deliveries are
        done, the others stay pending."""
        ...


class Robot(Protocol):
    """A work-chat robot (DingTalk, WeCom): markdown messages, no idempotency key."""

    @property
    def format(self) -> RobotFormat:
        """How large a message it takes."""
        ...

    async def send(self, message: RobotMessage) -> SendResult: ...


class Webhook(Protocol):
    """Another system: one reminder per request, its JSON, keyed by ``reminder_id``."""

    async def send(self, pending: Pending) -> SendResult: ...

    async def send_alert(self, body: bytes, key: str) -> SendResult:
        """An alert's JSON, keyed by ``key`` (the same alert in the same state)."""
        ...


class Refusals(Protocol):
    """Where reminders a target refused for good are kept (``cw.dlq.notifier``)."""

    async def publish(self, pending: Pending, target: Target, refused: Refused) -> None: ...


class Clock(Protocol):
    def now(self) -> datetime: ...


class DeliveryObserver(Protocol):
    """Metrics: no venue, issue or person, only the target's kind."""

    def delivered(self, target_kind: str, outcome: Outcome, count: int) -> None: ...
    def merged(self, target_kind: str) -> None: ...
    def alerted(self, target_kind: str, outcome: Outcome) -> None: ...
