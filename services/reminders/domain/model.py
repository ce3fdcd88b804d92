"""The reminders service's state, in the domain's words. Pure data: no driver is imported here.

A *timer* is one reminder to come: its ``reminder_id`` (deterministic, so a timer derived twice
is the same timer), what it is about, when it fires, and what became of it. Timers are derived
from the issue lifecycle (``services.common.lifecycle``) and kept with the issues, venues and
checkpoint in one transaction; a fired timer becomes a row of the outbox in the transaction that
closes it, and the outbox is what is published.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, TypeAlias
from uuid import UUID

from services.common.lifecycle import Issue, IssueKey, ItemAtVenue
from services.consumer.model import StreamEvent

TimerState: TypeAlias = Literal["pending", "sent", "skipped", "cancelled"]
SkipReason: TypeAlias = Literal["passed", "stale", "nothing_open", "outbox_expired"]
"""``passed``: a ``due_soon`` whose moment had gone when it was scheduled; ``stale``: older than
``stale_after`` when scheduled or due; ``nothing_open``: a digest of a district with nothing
open; ``outbox_expired``: recorded but not published within the stream's duplicate window."""

DEADLINE_KINDS = frozenset({"due_soon", "overdue", "escalation"})
"""Kinds that belong to one deadline: a new ``RectificationDue`` cancels them."""


@dataclass(slots=True)
class Timer:
    reminder_id: UUID
    district: str
    kind: str
    level: int
    fire_at: datetime
    state: TimerState
    issue_id: str | None = None
    """``None`` for a digest."""
    deadline: datetime | None = None
    """The deadline the timer belongs to (``DEADLINE_KINDS``)."""
    reason: str | None = None
    """Why it was skipped."""


@dataclass(frozen=True, slots=True)
class Venue:
    """What a reminder needs of a venue's registration (the latest one wins)."""

    district: str
    venue_id: str
    name: str
    first_responsible_name: str
    first_responsible_phone: str | None
    officer_name: str | None
    officer_phone: str | None


@dataclass(slots=True)
class Snapshot:
    """What a batch needs from the store."""

    issues: dict[IssueKey, Issue] = field(default_factory=dict)
    closures: dict[ItemAtVenue, list[datetime]] = field(default_factory=dict)
    pending: dict[IssueKey, list[StreamEvent]] = field(default_factory=dict)
    timers: dict[IssueKey, list[Timer]] = field(default_factory=dict)
    """Every timer of the batch's issues, in any state (a cancelled one may come back)."""
    digest_districts: set[str] = field(default_factory=set)
    """Districts of the batch that already have a digest to come."""


@dataclass(slots=True)
class Tally:
    """What happened to timers, by kind (the metrics' labels; never an issue or a venue)."""

    scheduled: Counter[str] = field(default_factory=Counter)
    skipped: Counter[tuple[str, str]] = field(default_factory=Counter)
    """By (kind, reason)."""
    cancelled: Counter[str] = field(default_factory=Counter)
    sent: Counter[str] = field(default_factory=Counter)

    def add(self, other: Tally) -> None:
        self.scheduled.update(other.scheduled)
        self.skipped.update(other.skipped)
        self.cancelled.update(other.cancelled)
        self.sent.update(other.sent)


@dataclass(slots=True)
class Changes:
    """What a batch changes."""

    issues: dict[IssueKey, Issue] = field(default_factory=dict)
    venues: dict[tuple[str, str], Venue] = field(default_factory=dict)
    timers: dict[UUID, Timer] = field(default_factory=dict)
    """Timers to write (new, or in a new state), by id."""
    pending_added: list[tuple[IssueKey, StreamEvent]] = field(default_factory=list)
    pending_resolved: set[IssueKey] = field(default_factory=set)
    refused: list[StreamEvent] = field(default_factory=list)
    """Follow-ups naming another venue than their issue's (the projector dead-letters them)."""
    tally: Tally = field(default_factory=Tally)


@dataclass(frozen=True, slots=True)
class BatchReport:
    """What a committed batch reports."""

    applied: int
    duplicates: int
    already_done: int
    checkpoint: int
    tally: Tally = field(default_factory=Tally)
    timers_written: int = 0


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """A reminder recorded as sent, to be published (with ``Nats-Msg-Id = reminder_id``)."""

    reminder_id: UUID
    kind: str
    subject: str
    payload: bytes
    fire_at: datetime
    recorded_at: datetime
