"""The delivery ledger in memory: the same port as PostgreSQL's, for tests of the rules."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from services.consumer.model import Tracked
from services.consumer.ports import CheckpointRegression
from services.notifier.domain.budget import Attempt
from services.notifier.domain.model import Outcome, Pending, StreamReminder
from services.notifier.domain.targets import Target

DONE = ("delivered", "dead_lettered")


@dataclass
class _Delivery:
    pending: Pending
    state: str = "pending"


@dataclass
class MemoryLedger:
    stream_seq: int = 0
    message_id: str | None = None
    deliveries: dict[tuple[UUID, str], _Delivery] = field(default_factory=dict)
    sent: list[tuple[int, str, Attempt, str]] = field(default_factory=list)
    """(attempt id, target, attempt, outcome) in the order they started."""

    async def checkpoint(self) -> int:
        return self.stream_seq

    async def tracked(self) -> Tracked:
        return Tracked(self.stream_seq, self.message_id)

    async def record(
        self,
        reminders: Sequence[StreamReminder],
        targets: Sequence[Target],
        through_seq: int,
        through_id: str | None = None,
    ) -> int:
        if through_seq < self.stream_seq:
            raise CheckpointRegression(f"checkpoint would move back to {through_seq}")
        added = 0
        for r in reminders:
            for t in targets:
                key = (r.reminder.reminder_id, t.name)
                if t.wants(r.reminder) and key not in self.deliveries:
                    self.deliveries[key] = _Delivery(Pending(r.reminder, r.seq, r.subject, r.raw))
                    added += 1
        self.stream_seq, self.message_id = through_seq, through_id
        return added

    async def pending(self, target: str, limit: int) -> list[Pending]:
        waiting = [
            d.pending
            for (_, name), d in self.deliveries.items()
            if name == target and d.state == "pending"
        ]
        return sorted(waiting, key=lambda p: p.seq)[:limit]

    async def attempts(self, target: str, since: datetime) -> list[Attempt]:
        return [a for _, name, a, _ in self.sent if name == target and a.started_at > since]

    async def begin(self, target: str, reminder_ids: Sequence[UUID], started_at: datetime) -> int:
        attempt_id = len(self.sent) + 1
        self.sent.append((attempt_id, target, Attempt(started_at, None), ""))
        return attempt_id

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
        i = attempt_id - 1
        _, name, attempt, _ = self.sent[i]
        done = Attempt(attempt.started_at, finished_at, throttled=outcome == "throttled")
        self.sent[i] = (attempt_id, name, done, outcome)
        if outcome in DONE:
            for rid in reminder_ids:
                self.deliveries[(rid, target)].state = outcome

    def state(self, reminder_id: UUID, target: str) -> str:
        return self.deliveries[(reminder_id, target)].state
