"""What a report is made of: the facts read from the public views (or replayed from the archive
as of a moment), and a report as rows of typed values under named columns. Pure data."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, TypeAlias

IssueStatus: TypeAlias = Literal["open", "rectifying", "overdue", "closed"]
Value: TypeAlias = "str | int | float | bool | datetime | timedelta | None"
Kind: TypeAlias = Literal[
    "text",
    "int",
    "rate",
    "time",
    "duration",
    "phase",
    "venue_kind",
    "status",
    "event_type",
    "district",
    "item",
]
"""How a column's values are shown: a rate is 0..1 (a percentage for people), a time an instant
(local for people, RFC 3339 for programs), a duration a ``timedelta`` (``3天4小时`` for people,
seconds for programs), a phase, venue kind, status or event type a code (its Chinese name); a
district or checklist item a code (its name as the campaign file gives it; programs get both)."""


@dataclass(frozen=True, slots=True)
class VenueFact:
    """A row of ``venues``."""

    district: str
    venue_id: str
    name: str
    kind: str
    street: str | None
    first_responsible_name: str
    first_responsible_phone: str | None
    officer_name: str | None
    officer_phone: str | None


@dataclass(frozen=True, slots=True)
class IssueFact:
    """A row of ``issue_status`` (status as of the report's moment)."""

    district: str
    issue_id: str
    venue_id: str
    phase: str
    item_code: str
    severity: str
    status: IssueStatus
    found_at: datetime
    due_at: datetime | None
    original_due_at: datetime | None
    extensions: int
    order_no: str | None
    assignee: str | None
    closed_at: datetime | None
    closed_on_time: bool | None
    closed_on_time_original: bool | None
    rebound: bool


@dataclass(frozen=True, slots=True)
class VenuePhaseFact:
    """A row of ``venue_phase_summary``: a venue in a phase, inspected or not (coverage)."""

    district: str
    venue_id: str
    venue_kind: str
    phase: str
    inspections: int
    inspections_self_check: int
    inspections_supervision: int
    inspections_look_back: int
    inspections_re_review: int
    items_checked: int
    items_failed: int
    issues_found: int
    issues_open: int
    issues_overdue: int
    issues_closed: int
    closed_on_time: int
    rebounds: int


@dataclass(frozen=True, slots=True)
class WaitingFact:
    """A row of ``waiting_follow_ups``: a follow-up the projector keeps until its IssueFound."""

    district: str
    venue_id: str
    issue_id: str
    event_type: str
    event_id: str
    occurred_at: datetime
    waiting_since: datetime
    """When the projector took it."""


@dataclass(frozen=True, slots=True)
class Facts:
    """Everything the reports are computed from, for one district or all, at one moment."""

    as_of: datetime
    district: str | None
    venues: tuple[VenueFact, ...] = ()
    issues: tuple[IssueFact, ...] = ()
    venue_phases: tuple[VenuePhaseFact, ...] = ()
    waiting: tuple[WaitingFact, ...] = ()
    """Only now: a replay as of a past moment has no record of what waited then."""
    checklist: frozenset[str] = frozenset()
    """The item codes the campaign's checklist lists; an issue naming another one is unknown."""


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    """The name in JSON and the stable identifier."""
    zh: str
    en: str
    kind: Kind = "text"


@dataclass(frozen=True, slots=True)
class Report:
    name: str
    """``summary``, ``overdue``, ``rebounds``, ``streets``, ``on_time``, ``unknown_items``."""
    zh: str
    en: str
    columns: tuple[Column, ...]
    rows: tuple[dict[str, Value], ...] = field(default_factory=tuple)
