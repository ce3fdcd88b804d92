"""The read model as the projection's service layer sees it; adapters implement it."""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol
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
from services.projector.domain.model import (
    Changes,
    Needs,
    Outcome,
    Snapshot,
    StreamEvent,
    Tracked,
)

__all__ = [
    "CheckpointRegression",
    "Comparison",
    "DeadLetters",
    "Fenced",
    "Generation",
    "Generations",
    "Missing",
    "Observer",
    "ReadModelStore",
    "ReadModelUnit",
    "Source",
    "StreamEnd",
    "Swap",
    "Unstorable",
    "Writer",
]


class ReadModelUnit(abc.ABC):
    """One atomic change of the read model: everything here commits together, or nothing."""

    @abc.abstractmethod
    async def checkpoint(self) -> int:
        """The last ``CW_EVENTS`` sequence whose effects are committed (0: none)."""

    @abc.abstractmethod
    async def tracked(self) -> Tracked:
        """The checkpoint and the id of the message at that sequence."""

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
    async def set_checkpoint(self, seq: int, message_id: str | None = None) -> None:
        """Record the position reached and the id of its message, in the same transaction as
        the effects; raise ``CheckpointRegression`` rather than move it backwards."""


class ReadModelStore(abc.ABC):
    @abc.abstractmethod
    def unit(self) -> AbstractAsyncContextManager[ReadModelUnit]:
        """Begin a unit; it commits when the block exits normally and rolls back otherwise."""

    async def checkpoint(self) -> int:
        async with self.unit() as unit:
            return await unit.checkpoint()

    async def tracked(self) -> Tracked:
        async with self.unit() as unit:
            return await unit.tracked()


@dataclass(frozen=True, slots=True)
class Missing:
    """Events (by event id) the live generation holds and a new one does not."""

    events: int
    first_seq: int | None = None
    """The live archive's stream sequences of the first and last of them."""
    last_seq: int | None = None


@dataclass(frozen=True, slots=True)
class Comparison:
    """The archives compared before the swap, live writers not held off (``Generations.compare``):
    the events the live generation then held and the new one lacked, and the lowest checkpoint
    of the live generation then. Whatever the live projectors archive afterwards lies beyond
    that checkpoint, so the swap, which holds them off, has only those and these to look at."""

    live: str
    """The live generation then."""
    through: int
    missing: tuple[UUID, ...] | None
    """``None``: too many to look at one by one again; the swap compares the archives whole."""


class Swap(abc.ABC):
    """A rebuild's swap in progress: live batches wait, readers still see the old generation."""

    store: ReadModelStore
    """The new generation, written on the swap's own transaction."""

    @abc.abstractmethod
    async def missing(self, before: Comparison | None = None) -> Missing:
        """What the views would lose with the swap: the events of the live generation's archive
        that are not in the new one's (a stream that lost its history rebuilds without them).
        Exact; with ``before``, only what may have changed since is looked at."""

    @abc.abstractmethod
    async def commit_to(self, through: int) -> str:
        """Carry every consumer's and partition's checkpoint to ``through``, point the views at
        the new generation; return the generation it replaced."""


@dataclass(frozen=True, slots=True)
class Generation:
    name: str
    number: int


class Generations(abc.ABC):
    """The read model's generations: built beside the live one, then swapped in atomically."""

    @abc.abstractmethod
    async def create(self) -> Generation:
        """A new, empty generation that is not live."""

    @abc.abstractmethod
    def store(self, generation: str) -> ReadModelStore:
        """Write to ``generation`` (being built) through its own connections."""

    @abc.abstractmethod
    async def compare(self, generation: str) -> Comparison:
        """Compare the live archive with ``generation``'s by event id without holding live
        writers off (the long part of ``Swap.missing``)."""

    @abc.abstractmethod
    def swapping(self, generation: str) -> AbstractAsyncContextManager[Swap]:
        """Hold every live writer off while the last events go in and the swap commits."""

    @abc.abstractmethod
    async def drop(self, generation: str) -> None:
        """Drop a generation that is not live."""


class StreamEnd(Protocol):
    """Where the stream ends now, and whether a consumer still has messages coming."""

    async def last_seq(self) -> int: ...
    async def pending(self) -> int: ...
