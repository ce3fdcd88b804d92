"""What the reminders service needs from the world: its store (timers, outbox, the issue state
they derive from, the checkpoint), a publisher, a clock. Adapters implement these; fakes too."""

from __future__ import annotations

import abc
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from uuid import UUID

from services.common.lifecycle import Issue, IssueKey, Needs
from services.consumer.model import StreamEvent, Tracked
from services.consumer.ports import CheckpointRegression, Fenced
from services.reminders.domain.model import Changes, OutboxEntry, Snapshot, Timer, Venue

__all__ = [
    "CheckpointRegression",
    "Clock",
    "Fenced",
    "Publisher",
    "ReminderStore",
    "ReminderUnit",
]

Clock = Callable[[], datetime]
"""The service's clock (aware): what "now" is when a timer is scheduled, fired or published."""


class ReminderUnit(abc.ABC):
    """One transaction of the reminders' store: everything here commits together, or nothing."""

    # -- following CW_EVENTS ------------------------------------------------------------------

    @abc.abstractmethod
    async def checkpoint(self) -> int:
        """The last ``CW_EVENTS`` sequence whose effects are committed (0: none)."""

    @abc.abstractmethod
    async def tracked(self) -> Tracked:
        """The checkpoint and the id of the message at that sequence."""

    @abc.abstractmethod
    async def set_checkpoint(self, seq: int, message_id: str | None = None) -> None:
        """Move the checkpoint forward and record its message's id; raise
        ``CheckpointRegression`` rather than move it back."""

    @abc.abstractmethod
    async def remember(self, events: Sequence[StreamEvent]) -> set[int]:
        """Record the events' ids; the sequences of those seen for the first time."""

    @abc.abstractmethod
    async def forget(self, events: Sequence[StreamEvent]) -> None:
        """Take refused events' ids back (a fixed event may be replayed under the same id)."""

    @abc.abstractmethod
    async def load(self, needs: Needs, districts: Collection[str]) -> Snapshot:
        """The state a batch needs, its issues' timers locked against the dispatcher."""

    @abc.abstractmethod
    async def save(self, changes: Changes) -> None:
        """Write issues, venues, waiting follow-ups and timers."""

    # -- firing -------------------------------------------------------------------------------

    @abc.abstractmethod
    async def due_timers(self, now: datetime, limit: int) -> list[Timer]:
        """Pending timers due by ``now``, oldest first, locked (others skip them)."""

    @abc.abstractmethod
    async def issues(self, keys: Collection[IssueKey]) -> dict[IssueKey, Issue]: ...

    @abc.abstractmethod
    async def venues(self, keys: Collection[tuple[str, str]]) -> dict[tuple[str, str], Venue]: ...

    @abc.abstractmethod
    async def open_issues(self, district: str) -> list[Issue]:
        """The district's issues that are not closed."""

    @abc.abstractmethod
    async def settle(self, timers: Sequence[Timer]) -> None:
        """Write the state (sent, skipped) a due timer ended in."""

    @abc.abstractmethod
    async def add_timers(self, timers: Sequence[Timer]) -> None:
        """Schedule timers the dispatcher derives (the next digest)."""

    @abc.abstractmethod
    async def record(self, entries: Sequence[OutboxEntry]) -> None:
        """Put reminders in the outbox (in the transaction that settles their timers)."""

    # -- publishing ---------------------------------------------------------------------------

    @abc.abstractmethod
    async def unpublished(self, limit: int) -> list[OutboxEntry]:
        """Outbox entries not yet published nor expired, oldest fire time first."""

    @abc.abstractmethod
    async def mark_published(self, ids: Sequence[UUID], at: datetime) -> None: ...

    @abc.abstractmethod
    async def mark_expired(self, ids: Sequence[UUID], at: datetime) -> None:
        """Entries that can no longer be published without risking a second copy."""

    @abc.abstractmethod
    async def next_fire_at(self) -> datetime | None:
        """When the next pending timer fires."""

    @abc.abstractmethod
    async def pending_counts(self) -> Mapping[str, int]:
        """Pending timers by kind."""

    @abc.abstractmethod
    async def unpublished_count(self) -> int:
        """Outbox entries neither published nor expired yet."""


class ReminderStore(abc.ABC):
    @abc.abstractmethod
    def unit(self) -> AbstractAsyncContextManager[ReminderUnit]:
        """Begin a unit; it commits when the block exits normally and rolls back otherwise."""

    async def checkpoint(self) -> int:
        async with self.unit() as unit:
            return await unit.checkpoint()

    async def tracked(self) -> Tracked:
        async with self.unit() as unit:
            return await unit.tracked()


class Publisher(abc.ABC):
    """Puts reminders into ``CW_REMINDERS`` with ``Nats-Msg-Id = reminder_id``."""

    @abc.abstractmethod
    async def publish(self, entries: Sequence[OutboxEntry]) -> list[UUID]:
        """Publish ``entries``; the ids the stream confirmed (stored or recognised as a
        duplicate). Those not confirmed are tried again later."""
