"""The read model as the projection's service layer sees it; adapters implement it."""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol
from uuid import UUID

from contracts import Event
from services.projector.domain.model import (
    BatchOutcome,
    Changes,
    Delivery,
    Needs,
    Outcome,
    Prepared,
    Snapshot,
    StreamEvent,
)


class Fenced(RuntimeError):
    """Another projector took over the read model: this one must stop, not retry."""


class CheckpointRegression(RuntimeError):
    """A checkpoint may only move forward: a lower value means two writers, or a bug."""


class Unstorable(RuntimeError):
    """The store cannot hold what a unit tried to write (a data error, not a lost connection):
    retrying the same unit can never succeed."""


class ReadModelUnit(abc.ABC):
    """One atomic change of the read model: everything here commits together, or nothing."""

    @abc.abstractmethod
    async def checkpoint(self) -> int:
        """The last ``CW_EVENTS`` sequence whose effects are committed (0: none)."""

    @abc.abstractmethod
    async def archive(self, events: Sequence[StreamEvent]) -> set[int]:
        """Append events to the archive; return the sequences of those whose event id is new."""

    @abc.abstractmethod
    async def archived(self, event_ids: Sequence[UUID]) -> Mapping[UUID, Event]:
        """The archived events with these ids (to tell a duplicate from a reused id)."""

    @abc.abstractmethod
    async def unarchive(self, events: Sequence[StreamEvent]) -> None:
        """Take refused events back out of the archive (they became dead letters)."""

    @abc.abstractmethod
    async def record_outcomes(self, outcomes: Sequence[Outcome]) -> None:
        """Record what became of messages that are not in the archive."""

    @abc.abstractmethod
    async def load(self, needs: Needs) -> Snapshot:
        """The stored state the batch needs."""

    @abc.abstractmethod
    async def save(self, changes: Changes) -> None:
        """Write what the batch changed."""

    @abc.abstractmethod
    async def set_checkpoint(self, seq: int) -> None:
        """Record the position reached, in the same transaction as the effects; raise
        ``CheckpointRegression`` rather than move it backwards."""


class ReadModelStore(abc.ABC):
    @abc.abstractmethod
    def unit(self) -> AbstractAsyncContextManager[ReadModelUnit]:
        """Begin a unit; it commits when the block exits normally and rolls back otherwise."""

    async def checkpoint(self) -> int:
        async with self.unit() as unit:
            return await unit.checkpoint()


class Source(Protocol):
    """Messages of ``CW_EVENTS`` in stream order, without holes (adapters.jetstream)."""

    async def start(self, after_seq: int) -> None: ...
    async def restart(self, after_seq: int) -> None: ...
    def needs_restart(self) -> str | None: ...
    def invalidate(self, reason: str, detail: str = "") -> None: ...
    async def next_batch(self, wait_s: float) -> list[Prepared]: ...
    async def ack_taken(self) -> None: ...
    async def stop(self) -> None: ...


class DeadLetters(Protocol):
    """Where rejected and refused messages are kept, with their reasons."""

    async def publish(
        self,
        delivery: Delivery,
        reason: str,
        field: str,
        kind: str,
        extra: Mapping[str, str] | None = None,
    ) -> None: ...


class Writer(Protocol):
    """The single-writer lock."""

    async def ensure(self) -> bool:
        """Hold the write lock; ``True`` if it had been lost and was taken again."""
        ...


class Observer(Protocol):
    """What the projector reports as it goes (adapters.metrics: Prometheus)."""

    def batch_done(self, outcome: BatchOutcome, size: int, seconds: float) -> None: ...
    def retried(self, stage: str) -> None: ...
    def dead_lettered(self, kind: str) -> None: ...
    def consumer_restarted(self, reason: str) -> None: ...
