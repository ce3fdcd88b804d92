"""The read model's state, in the domain's words. Pure data: no driver is imported here."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, TypeAlias

from services.consumer.model import (
    Delivery,
    Outcome,
    OutcomeKind,
    Prepared,
    Rejection,
    StreamEvent,
)

__all__ = [
    "BatchOutcome",
    "Changes",
    "Delivery",
    "Issue",
    "IssueStatus",
    "Needs",
    "Outcome",
    "OutcomeKind",
    "Prepared",
    "Refusal",
    "Rejection",
    "Snapshot",
    "StreamEvent",
    "Venue",
    "VenueAsOf",
    "VenuePhaseCounts",
]

IssueKey: TypeAlias = tuple[str, str]
"""(district, issue_id): issue ids are unique within a district's systems, not across them."""
VenueKey: TypeAlias = tuple[str, str]
"""(district, venue_id)."""
VenuePhaseKey: TypeAlias = tuple[str, str, str]
"""(district, venue_id, phase)."""
ItemAtVenue: TypeAlias = tuple[str, str, str]
"""(district, venue_id, item_code): where a rebound (反复反弹) is looked for."""

IssueStatus: TypeAlias = Literal["open", "rectifying", "overdue", "closed"]


@dataclass(frozen=True, slots=True)
class Refusal:
    """A valid event the read model refuses: it contradicts what the archive already holds."""

    event: StreamEvent
    kind: Literal["venue_mismatch", "event_id_reused", "unhandled_event_type"]
    field: str
    reason: str
    issue_venue: str | None = None
    """For ``venue_mismatch``: the venue the issue belongs to."""


@dataclass(slots=True)
class Issue:
    district: str
    issue_id: str
    venue_id: str
    phase: str
    item_code: str
    category: str | None
    severity: str
    description: str | None
    found_at: datetime
    due_at: datetime | None = None
    order_no: str | None = None
    assignee: str | None = None
    closed_at: datetime | None = None
    closed_on_time: bool | None = None
    recheck_failures: int = 0
    rebound: bool = False

    @property
    def key(self) -> IssueKey:
        return (self.district, self.issue_id)

    def status(self, now: datetime) -> IssueStatus:
        """The rule the ``issue_status`` view applies with the database clock."""
        if self.closed_at is not None:
            return "closed"
        if self.due_at is None:
            return "open"
        return "overdue" if self.due_at < now else "rectifying"


@dataclass(frozen=True, slots=True)
class Venue:
    district: str
    venue_id: str
    name: str
    kind: str
    street: str | None
    address: str | None
    first_responsible_name: str
    first_responsible_phone: str | None
    officer_name: str | None
    officer_phone: str | None
    registered_at: datetime


@dataclass(frozen=True, slots=True)
class VenueAsOf:
    """A venue and its issues as they stood at a moment (``cw venue``)."""

    district: str
    venue_id: str
    venue: Venue | None
    """Its registration as of the moment; else its first one after it; ``None``: never."""
    issues: tuple[tuple[Issue, IssueStatus], ...]


@dataclass(slots=True)
class VenuePhaseCounts:
    """Additive counters for one (venue, phase); the stored row is the sum of these deltas."""

    inspections: int = 0
    issues_found: int = 0
    issues_closed: int = 0
    closed_on_time: int = 0
    recheck_failures: int = 0
    rebounds: int = 0
    last_inspected_at: datetime | None = None


@dataclass(slots=True)
class Snapshot:
    """What a batch needs from the stored read model before it can be applied."""

    issues: dict[IssueKey, Issue] = field(default_factory=dict)
    closures: dict[ItemAtVenue, list[datetime]] = field(default_factory=dict)
    """Closing times of issues of the same item at the same venue (for rebounds)."""
    pending: dict[IssueKey, list[StreamEvent]] = field(default_factory=dict)
    """Events that arrived before the ``IssueFound`` of their issue, in stream order."""


@dataclass(frozen=True, slots=True)
class Needs:
    """What to load into a ``Snapshot`` for a batch."""

    issue_keys: frozenset[IssueKey]
    found_keys: frozenset[IssueKey]
    """Issues found in this batch: their waiting events may now apply."""
    items_at_venues: frozenset[ItemAtVenue]
    closed_since: datetime | None


@dataclass(slots=True)
class Changes:
    """What a batch changes in the read model."""

    issues: dict[IssueKey, Issue] = field(default_factory=dict)
    venues: dict[VenueKey, Venue] = field(default_factory=dict)
    counts: dict[VenuePhaseKey, VenuePhaseCounts] = field(default_factory=dict)
    pending_added: list[tuple[IssueKey, StreamEvent]] = field(default_factory=list)
    pending_resolved: set[IssueKey] = field(default_factory=set)
    applied: dict[str, int] = field(default_factory=dict)
    """Events applied by type (deferred ones count when they finally apply)."""
    deferred: int = 0
    """Events kept to wait for their issue."""
    resumed: int = 0
    """Waiting events applied because their issue arrived."""
    refused: list[Refusal] = field(default_factory=list)
    """Events that name another venue than their issue's: dead letters, not effects."""


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    applied: int
    """Events whose effects were committed now."""
    duplicates: int
    """Events whose event id was already applied (republished, or published without a msg id)."""
    already_done: int
    """Redeliveries at or below the checkpoint (a crash between commit and ack)."""
    checkpoint: int
    changes: Changes = field(default_factory=Changes)
    refused: tuple[Refusal, ...] = ()
    """Valid events dead-lettered because they contradict the archive."""
