"""The reminders' store in memory: the fake the service layer's unit tests run on. A unit works
on a copy of the state and puts it back only when it ends normally (a rollback otherwise)."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from uuid import UUID

from services.common.lifecycle import Issue, IssueKey, Needs
from services.consumer.model import StreamEvent, Tracked
from services.reminders.domain.model import Changes, OutboxEntry, Snapshot, Timer, Venue
from services.reminders.domain.ports import CheckpointRegression, ReminderStore, ReminderUnit


@dataclass
class OutboxRow:
    entry: OutboxEntry
    published_at: datetime | None = None
    expired_at: datetime | None = None


@dataclass
class State:
    checkpoint: int = 0
    checkpoint_id: str | None = None
    seen: dict[UUID, int] = field(default_factory=dict)
    issues: dict[IssueKey, Issue] = field(default_factory=dict)
    venues: dict[tuple[str, str], Venue] = field(default_factory=dict)
    pending: dict[IssueKey, list[StreamEvent]] = field(default_factory=dict)
    timers: dict[UUID, Timer] = field(default_factory=dict)
    outbox: dict[UUID, OutboxRow] = field(default_factory=dict)


class MemoryReminderUnit(ReminderUnit):
    def __init__(self, state: State) -> None:
        self.s = state

    async def checkpoint(self) -> int:
        return self.s.checkpoint

    async def tracked(self) -> Tracked:
        return Tracked(self.s.checkpoint, self.s.checkpoint_id)

    async def set_checkpoint(self, seq: int, message_id: str | None = None) -> None:
        if seq < self.s.checkpoint:
            raise CheckpointRegression(f"checkpoint would move back to {seq}")
        self.s.checkpoint = seq
        self.s.checkpoint_id = message_id

    async def remember(self, events: Sequence[StreamEvent]) -> set[int]:
        new = set()
        for se in events:
            if se.event.event_id not in self.s.seen:
                self.s.seen[se.event.event_id] = se.seq
                new.add(se.seq)
        return new

    async def forget(self, events: Sequence[StreamEvent]) -> None:
        for se in events:
            if self.s.seen.get(se.event.event_id) == se.seq:
                del self.s.seen[se.event.event_id]

    async def load(self, needs: Needs, districts: Collection[str]) -> Snapshot:
        snap = Snapshot()
        for key in needs.issue_keys:
            if key in self.s.issues:
                snap.issues[key] = copy.copy(self.s.issues[key])
        for t in self.s.timers.values():
            if t.issue_id is not None and (t.district, t.issue_id) in needs.issue_keys:
                snap.timers.setdefault((t.district, t.issue_id), []).append(replace(t))
        if needs.closed_since is not None:
            for i in self.s.issues.values():
                item = (i.district, i.venue_id, i.item_code)
                if (
                    item in needs.items_at_venues
                    and i.closed_at
                    and i.closed_at >= needs.closed_since
                ):
                    snap.closures.setdefault(item, []).append(i.closed_at)
        for key in needs.found_keys:
            if key in self.s.pending:
                snap.pending[key] = list(self.s.pending[key])
        snap.digest_districts = {
            t.district
            for t in self.s.timers.values()
            if t.kind == "digest" and t.state == "pending" and t.district in districts
        }
        return snap

    async def save(self, changes: Changes) -> None:
        self.s.issues.update({k: copy.copy(v) for k, v in changes.issues.items()})
        self.s.venues.update(changes.venues)
        for key in changes.pending_resolved:
            self.s.pending.pop(key, None)
        for key, se in changes.pending_added:
            self.s.pending.setdefault(key, []).append(se)
        await self.add_timers(list(changes.timers.values()))

    async def due_timers(self, now: datetime, limit: int) -> list[Timer]:
        due = [t for t in self.s.timers.values() if t.state == "pending" and t.fire_at <= now]
        return [replace(t) for t in sorted(due, key=lambda t: (t.fire_at, t.reminder_id))[:limit]]

    async def issues(self, keys: Collection[IssueKey]) -> dict[IssueKey, Issue]:
        return {k: self.s.issues[k] for k in keys if k in self.s.issues}

    async def venues(self, keys: Collection[tuple[str, str]]) -> dict[tuple[str, str], Venue]:
        return {k: self.s.venues[k] for k in keys if k in self.s.venues}

    async def open_issues(self, district: str) -> list[Issue]:
        return [i for i in self.s.issues.values() if i.district == district and not i.closed_at]

    async def settle(self, timers: Sequence[Timer]) -> None:
        for t in timers:
            self.s.timers[t.reminder_id] = replace(t)

    async def add_timers(self, timers: Sequence[Timer]) -> None:
        for t in timers:
            have = self.s.timers.get(t.reminder_id)
            if have is None or have.state in ("pending", "cancelled"):
                self.s.timers[t.reminder_id] = replace(t)

    async def record(self, entries: Sequence[OutboxEntry]) -> None:
        for e in entries:
            self.s.outbox.setdefault(e.reminder_id, OutboxRow(e))

    async def unpublished(self, limit: int) -> list[OutboxEntry]:
        rows = [r for r in self.s.outbox.values() if not r.published_at and not r.expired_at]
        rows.sort(key=lambda r: (r.entry.fire_at, r.entry.reminder_id))
        return [r.entry for r in rows[:limit]]

    async def mark_published(self, ids: Sequence[UUID], at: datetime) -> None:
        for rid in ids:
            self.s.outbox[rid].published_at = at

    async def mark_expired(self, ids: Sequence[UUID], at: datetime) -> None:
        for rid in ids:
            if self.s.outbox[rid].published_at is None:
                self.s.outbox[rid].expired_at = at

    async def next_fire_at(self) -> datetime | None:
        return min((t.fire_at for t in self.s.timers.values() if t.state == "pending"),
                   default=None)  # fmt: skip

    async def pending_counts(self) -> Mapping[str, int]:
        out: dict[str, int] = {}
        for t in self.s.timers.values():
            if t.state == "pending":
                out[t.kind] = out.get(t.kind, 0) + 1
        return out

    async def unpublished_count(self) -> int:
        return sum(1 for r in self.s.outbox.values() if not r.published_at and not r.expired_at)


class MemoryReminders(ReminderStore):
    def __init__(self) -> None:
        self.state = State()

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[MemoryReminderUnit]:
        working = copy.deepcopy(self.state)
        yield MemoryReminderUnit(working)
        self.state = working
