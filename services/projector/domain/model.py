"""The read model's state, in the domain's words. Pure data: no driver is imported here."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, TypeAlias

from services.common.lifecycle import Issue, IssueKey, IssueStatus, ItemAtVenue, Needs
from services.consumer.model import (
    Delivery,
    Outcome,
    OutcomeKind,
    Prepared,
    Rejection,
    StreamEvent,
    Tracked,
)

__all__ = [
    "INSPECTION_KINDS",
    "BatchOutcome",
    "Changes",
    "Delivery",
    "Issue",
    "IssueKey",
    "IssueStatus",
    "ItemAtVenue",
    "Needs",
    "Outcome",
    "OutcomeKind",
    "Prepared",
    "Refusal",
    "Rejection",
    "Snapshot",
    "StreamEvent",
    "Tracked",
    "Venue",
    "VenueAsOf",
    "VenuePhaseCounts",
]

INSPECTION_KINDS = ("self_check", "supervision", "look_back", "re_review")
"""The contract's inspection kinds, in the campaign's order; each has its own counter."""

VenueKey: TypeAlias = tuple[str, str]
"""(district, venue_id)."""
VenuePhaseKey: TypeAlias = tuple[str, str, str]
"""(district, venue_id, phase)."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """A valid event the read model refuses: it contradicts what the archive already holds."""

    event: StreamEvent
    kind: Literal["venue_mismatch", "event_id_reused", "unhandled_event_type"]
    field: str
    reason: str
    issue_venue: str | None = None
    """For ``venue_mismatch``: the venue the issue belongs to."""


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
    """The first registration's moment (a later ``VenueRegistered`` changes the rest)."""


def first_registration(before: Venue | None, at: datetime) -> datetime:
    """``registered_at`` of a venue registered (again) at ``at``: the earlier of the two."""
    return at if before is None else min(before.registered_at, at)


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
    inspections_self_check: int = 0
    inspections_supervision: int = 0
    inspections_look_back: int = 0
    inspections_re_review: int = 0
    items_checked: int = 0
    """Checklist items checked by inspections that said how many they checked."""
    items_failed: int = 0
    """Of those items, the ones that failed."""


@dataclass(slots=True)
class Snapshot:
    """What a batch needs from the stored read model before it can be applied."""

    issues: dict[IssueKey, Issue] = field(default_factory=dict)
    closures: dict[ItemAtVenue, list[datetime]] = field(default_factory=dict)
    """Closing times of issues of the same item at the same venue (for rebounds)."""
    pending: dict[IssueKey, list[StreamEvent]] = field(default_factory=dict)
    """Events that arrived before the ``IssueFound`` of their issue, in stream order."""


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
