"""The read model as the projection's service layer sees it; adapters implement it."""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from uuid import UUID

from contracts import Event
from services.consumer.ports import (
    CheckpointRegression,
    DeadLetters,
    Fenced,
    Observer,
    Source,
    Unstorable,
    Writer,
)
from services.projector.domain.model import Changes, Needs, Outcome, Snapshot, StreamEvent

__all__ = [
    "CheckpointRegression",
    "DeadLetters",
    "Fenced",
    "Observer",
    "ReadModelStore",
    "ReadModelUnit",
    "Source",
    "Unstorable",
    "Writer",
]


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
