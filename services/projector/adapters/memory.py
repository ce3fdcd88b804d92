"""An in-memory read model with the same interface as PostgreSQL's, and its generations: for fast
tests and tools."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from uuid import UUID

from contracts import Event
from services.projector.domain.model import (
    Changes,
    Issue,
    IssueKey,
    ItemAtVenue,
    Needs,
    Outcome,
    Snapshot,
    StreamEvent,
    Tracked,
    Venue,
    VenueKey,
    VenuePhaseCounts,
    VenuePhaseKey,
    first_registration,
)
from services.projector.domain.ports import (
    CheckpointRegression,
    Comparison,
    Generation,
    Generations,
    Missing,
    ReadModelStore,
    ReadModelUnit,
    Swap,
)


@dataclass
class MemoryState:
    checkpoints: dict[tuple[str, str], int] = field(default_factory=dict)
    """By (consumer, partition)."""
    checkpoint_ids: dict[tuple[str, str], str | None] = field(default_factory=dict)
    """The id of the message at each checkpoint."""
    archive: dict[int, StreamEvent] = field(default_factory=dict)
    event_ids: set[UUID] = field(default_factory=set)
    issues: dict[IssueKey, Issue] = field(default_factory=dict)
    venues: dict[VenueKey, Venue] = field(default_factory=dict)
    counts: dict[VenuePhaseKey, VenuePhaseCounts] = field(default_factory=dict)
    pending: dict[IssueKey, list[StreamEvent]] = field(default_factory=dict)
    outcomes: dict[int, Outcome] = field(default_factory=dict)


class MemoryUnit(ReadModelUnit):
    def __init__(self, state: MemoryState, key: tuple[str, str]) -> None:
        self.state = state
        self._key = key

    async def checkpoint(self) -> int:
        return self.state.checkpoints.get(self._key, 0)

    async def tracked(self) -> Tracked:
        return Tracked(await self.checkpoint(), self.state.checkpoint_ids.get(self._key))

    async def set_checkpoint(self, seq: int, message_id: str | None = None) -> None:
        if seq < self.state.checkpoints.get(self._key, 0):
            raise CheckpointRegression(f"checkpoint of {self._key} would move back to {seq}")
        self.state.checkpoints[self._key] = seq
        self.state.checkpoint_ids[self._key] = message_id

    async def archive(self, events: Sequence[StreamEvent]) -> set[int]:
        new: set[int] = set()
        for se in events:
            if se.event.event_id in self.state.event_ids or se.seq in self.state.archive:
                continue
            self.state.event_ids.add(se.event.event_id)
            self.state.archive[se.seq] = se
            new.add(se.seq)
        return new

    async def archived(self, event_ids: Sequence[UUID]) -> Mapping[UUID, Event]:
        wanted = set(event_ids)
        return {
            se.event.event_id: se.event
            for se in self.state.archive.values()
            if se.event.event_id in wanted
        }

    async def unarchive(self, events: Sequence[StreamEvent]) -> None:
        for se in events:
            if self.state.archive.get(se.seq) is not None:
                del self.state.archive[se.seq]
                self.state.event_ids.discard(se.event.event_id)

    async def record_outcomes(self, outcomes: Sequence[Outcome]) -> None:
        self.state.outcomes.update((o.seq, o) for o in outcomes)

    async def load(self, needs: Needs) -> Snapshot:
        s = self.state
        closures: dict[ItemAtVenue, list[datetime]] = {}
        if needs.closed_since is not None:
            for issue in s.issues.values():
                at_venue = (issue.district, issue.venue_id, issue.item_code)
                if (
                    at_venue in needs.items_at_venues
                    and issue.closed_at is not None
                    and issue.closed_at >= needs.closed_since
                ):
                    closures.setdefault(at_venue, []).append(issue.closed_at)
        return Snapshot(
            issues={k: copy.copy(s.issues[k]) for k in needs.issue_keys if k in s.issues},
            closures=closures,
            pending={k: list(s.pending[k]) for k in needs.found_keys if k in s.pending},
        )

    async def save(self, changes: Changes) -> None:
        s = self.state
        for key, issue in changes.issues.items():
            s.issues[key] = copy.copy(issue)
        for key, venue in changes.venues.items():
            s.venues[key] = replace(
                venue, registered_at=first_registration(s.venues.get(key), venue.registered_at)
            )
        for venue_phase, delta in changes.counts.items():
            row = s.counts.setdefault(venue_phase, VenuePhaseCounts())
            for f in fields(VenuePhaseCounts):
                if f.name == "last_inspected_at":
                    if delta.last_inspected_at is not None and (
                        row.last_inspected_at is None
                        or delta.last_inspected_at > row.last_inspected_at
                    ):
                        row.last_inspected_at = delta.last_inspected_at
                else:
                    setattr(row, f.name, getattr(row, f.name) + getattr(delta, f.name))
        for issue_key in changes.pending_resolved:
            s.pending.pop(issue_key, None)
        for issue_key, se in changes.pending_added:
            s.pending.setdefault(issue_key, []).append(se)


@dataclass
class _Database:
    """What several consumers' stores share, as they share one PostgreSQL database."""

    state: MemoryState = field(default_factory=MemoryState)


class MemoryReadModel(ReadModelStore):
    """Each unit works on a copy that replaces the state only when the unit succeeds."""

    def __init__(
        self,
        consumer: str = "projector",
        partition: str = "",
        *,
        shared: MemoryReadModel | None = None,
    ) -> None:
        # ``shared``: another consumer's store on the same data, with a checkpoint of its own.
        self._db: _Database = shared._db if shared is not None else _Database()
        self._key = (consumer, partition)

    @property
    def state(self) -> MemoryState:
        return self._db.state

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[MemoryUnit]:
        unit = MemoryUnit(copy.deepcopy(self._db.state), self._key)
        yield unit
        self._db.state = unit.state


class MemoryGenerations(Generations):
    """Generations ``g1``, ``g2``, ...; ``g1`` (or the store given) is live at first."""

    def __init__(self, live: MemoryReadModel | None = None) -> None:
        self.stores: dict[str, MemoryReadModel] = {"g1": live or MemoryReadModel()}
        self.live = "g1"
        self.dropped: list[str] = []

    async def create(self) -> Generation:
        number = len(self.stores) + 1
        self.stores[f"g{number}"] = MemoryReadModel()
        return Generation(f"g{number}", number)

    def store(self, generation: str) -> ReadModelStore:
        return self.stores[generation]

    async def compare(self, generation: str) -> Comparison:
        live, new = self.stores[self.live].state, self.stores[generation].state
        missing = tuple(
            se.event.event_id
            for se in live.archive.values()
            if se.event.event_id not in new.event_ids
        )
        return Comparison(self.live, min(live.checkpoints.values(), default=0), missing)

    @asynccontextmanager
    async def swapping(self, generation: str) -> AsyncIterator[Swap]:
        yield MemorySwap(self, generation)

    async def drop(self, generation: str) -> None:
        if generation == self.live:
            raise ValueError(f"{generation} is the live generation")
        self.dropped.append(generation)
        self.stores.pop(generation, None)


class MemorySwap(Swap):
    def __init__(self, owner: MemoryGenerations, name: str) -> None:
        self.owner, self.name = owner, name
        self.store = owner.stores[name]

    async def missing(self, before: Comparison | None = None) -> Missing:
        """Exact, whole: nothing to gain here from what ``before`` found."""
        live, new = self.owner.stores[self.owner.live].state, self.owner.stores[self.name].state
        seqs = sorted(s for s, se in live.archive.items() if se.event.event_id not in new.event_ids)
        return Missing(len(seqs), seqs[0], seqs[-1]) if seqs else Missing(0)

    async def commit_to(self, through: int) -> str:
        """As ``CARRY_CHECKPOINTS``: every consumer and partition of the live generation goes
        on from ``through``, with the id the new generation's own checkpoint recorded there."""
        old = self.owner.live
        live, new = self.owner.stores[old].state, self.owner.stores[self.name].state
        carried = next(
            (i for k, i in new.checkpoint_ids.items() if i and new.checkpoints.get(k) == through),
            None,
        )
        for key in live.checkpoints:
            new.checkpoints[key] = through
            new.checkpoint_ids[key] = carried
        self.owner.live = self.name
        return old
