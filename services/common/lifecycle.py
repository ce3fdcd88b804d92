"""The lifecycle of an issue, as every reader of ``CW_EVENTS`` must follow it: written once.

The projector (the read model) and the reminders service (the timers) both derive their state
from these rules, so that an issue the views show as closed never gets an overdue reminder:
- the first ``IssueFound`` of an issue wins; a second one is ignored;
- issue ids are unique per district: an issue is keyed by (district, issue_id);
- a follow-up (``RectificationDue``, ``RecheckFailed``, ``RecheckPassed``) that arrives before
  its ``IssueFound`` waits for it, and is applied, in stream order, when it comes;
- a follow-up naming another venue than its issue's is refused (never applied);
- a later ``RectificationDue`` replaces the deadline (an extension when it changes it; the
  first one's deadline is kept as the original); ``RecheckPassed`` closes the issue, and a
  closed issue stays closed (a problem that comes back is a new issue);
- an issue is a rebound (反复反弹) when, at the same venue, an issue of the same item was closed
  within the rebound window before it was found.

``IssueLifecycle`` applies them to the state a batch needs and tells its subclass what happened
through hooks (``issue_found``, ``deadline_set``, ``issue_closed``, ...); what each reader keeps
(counters, timers) is the subclass's business. Pure: no driver is imported here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, TypeAlias

from contracts import IssueFound, RecheckFailed, RecheckPassed, RectificationDue
from services.consumer.model import StreamEvent

IssueKey: TypeAlias = tuple[str, str]
"""(district, issue_id): issue ids are unique within a district's systems, not across them."""
ItemAtVenue: TypeAlias = tuple[str, str, str]
"""(district, venue_id, item_code): where a rebound (反复反弹) is looked for."""
IssueStatus: TypeAlias = Literal["open", "rectifying", "overdue", "closed"]

ISSUE_EVENTS = (RectificationDue, RecheckFailed, RecheckPassed)
ISSUE_EVENT_TYPES = frozenset(t.__name__ for t in ISSUE_EVENTS)


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
    original_due_at: datetime | None = None
    """The deadline of the issue's first ``RectificationDue`` (``due_at`` is the one in force)."""
    extensions: int = 0
    """Later ``RectificationDue`` that changed the deadline."""

    @property
    def key(self) -> IssueKey:
        return (self.district, self.issue_id)

    @property
    def closed_on_time_original(self) -> bool | None:
        """Closed by the original deadline (or without one); ``None`` while open."""
        if self.closed_at is None:
            return None
        return self.original_due_at is None or self.closed_at <= self.original_due_at

    def status(self, now: datetime) -> IssueStatus:
        """The rule the ``issue_status`` view applies with the database clock."""
        if self.closed_at is not None:
            return "closed"
        if self.due_at is None:
            return "open"
        return "overdue" if self.due_at < now else "rectifying"


@dataclass(frozen=True, slots=True)
class Needs:
    """What to load for a batch: its issues, their waiting follow-ups, recent closures."""

    issue_keys: frozenset[IssueKey]
    found_keys: frozenset[IssueKey]
    """Issues found in this batch: their waiting events may now apply."""
    items_at_venues: frozenset[ItemAtVenue]
    closed_since: datetime | None


def needs_of(events: Iterable[StreamEvent], rebound_window: timedelta) -> Needs:
    issue_keys: set[IssueKey] = set()
    found: set[IssueKey] = set()
    items: set[ItemAtVenue] = set()
    earliest: datetime | None = None
    for se in events:
        ev = se.event
        kind = ev.event_type
        if kind == "IssueFound":
            assert type(ev) is IssueFound
            key = (ev.district, ev.data.issue_id)
            found.add(key)
            issue_keys.add(key)
            items.add((ev.district, ev.venue_id, ev.data.item_code))
            if earliest is None or ev.occurred_at < earliest:
                earliest = ev.occurred_at
        elif kind in ISSUE_EVENT_TYPES:
            assert type(ev) in ISSUE_EVENTS
            issue_keys.add((ev.district, ev.data.issue_id))  # type: ignore[union-attr]
    return Needs(
        issue_keys=frozenset(issue_keys),
        found_keys=frozenset(found),
        items_at_venues=frozenset(items),
        closed_since=None if earliest is None else earliest - rebound_window,
    )


class IssueLifecycle:
    """Applies issue events to a working copy of the state a batch touches; subclasses hear
    what happened through the hooks (each does nothing here)."""

    def __init__(
        self,
        issues: dict[IssueKey, Issue],
        closures: dict[ItemAtVenue, list[datetime]],
        pending: dict[IssueKey, list[StreamEvent]],
        rebound_window: timedelta,
    ) -> None:
        self._issues = issues
        self._closures = closures
        self._pending = pending
        self._window = rebound_window

    def find(self, ev: IssueFound, phase: str) -> Issue | None:
        """The issue ``ev`` founds, with its waiting follow-ups applied; ``None`` if the issue
        was reported before (the first report stands)."""
        key = (ev.district, ev.data.issue_id)
        if key in self._issues:
            return None
        item = (ev.district, ev.venue_id, ev.data.item_code)
        rebound = any(
            ev.occurred_at - self._window <= closed <= ev.occurred_at
            for closed in self._closures.get(item, ())
        )
        issue = Issue(
            district=ev.district,
            issue_id=ev.data.issue_id,
            venue_id=ev.venue_id,
            phase=phase,
            item_code=ev.data.item_code,
            category=ev.data.category,
            severity=ev.data.severity,
            description=ev.data.description,
            found_at=ev.occurred_at,
            rebound=rebound,
        )
        self._issues[key] = issue
        self.issue_found(issue)
        waiting = self._pending.pop(key, None)
        if waiting is not None:
            self.waiting_resolved(key)
            for se in sorted(waiting, key=lambda s: s.seq):
                if se.event.venue_id != issue.venue_id:
                    self.venue_refused(se, issue)
                    continue
                self._apply_to_issue(issue, se)
                self.resumed(se)
        return issue

    def follow(self, se: StreamEvent) -> bool:
        """Apply a follow-up to its issue; ``False`` when it waits or is refused."""
        ev = se.event
        issue = self._issues.get((ev.district, ev.data.issue_id))  # type: ignore[union-attr]
        if issue is None:
            # Its IssueFound has not arrived (another publisher, a late upload): keep it.
            key = (ev.district, ev.data.issue_id)  # type: ignore[union-attr]
            self._pending.setdefault(key, []).append(se)
            self.deferred(key, se)
            return False
        if issue.venue_id != ev.venue_id:
            self.venue_refused(se, issue)
            return False
        self._apply_to_issue(issue, se)
        return True

    def _apply_to_issue(self, issue: Issue, se: StreamEvent) -> None:
        ev = se.event
        if issue.closed_at is not None:
            # A closed issue (销号) stays closed; a problem that comes back is a new issue.
            return
        kind = type(ev)
        if kind is RectificationDue:
            assert type(ev) is RectificationDue
            previous = issue.due_at
            if issue.original_due_at is None:
                # A reader that keeps no original (an earlier version's row) takes the deadline
                # it knew as the first one.
                issue.original_due_at = previous if previous is not None else ev.data.due_at
            if previous is not None and ev.data.due_at != previous:
                issue.extensions += 1
            issue.due_at = ev.data.due_at
            issue.order_no = ev.data.order_no
            issue.assignee = ev.data.assignee
            self.deadline_set(issue, previous)
        elif kind is RecheckFailed:
            issue.recheck_failures += 1
            self.recheck_failed(issue)
        elif kind is RecheckPassed:
            issue.closed_at = ev.occurred_at
            issue.closed_on_time = issue.due_at is None or ev.occurred_at <= issue.due_at
            item = (issue.district, issue.venue_id, issue.item_code)
            self._closures.setdefault(item, []).append(ev.occurred_at)
            self.issue_closed(issue)
        else:  # pragma: no cover - the caller passes issue events only
            raise TypeError(f"not an issue event: {ev.event_type}")
        self.issue_changed(issue)

    # -- hooks --------------------------------------------------------------------------------

    def issue_found(self, issue: Issue) -> None:
        """A new issue (before its waiting follow-ups are applied)."""

    def waiting_resolved(self, key: IssueKey) -> None:
        """The follow-ups that waited for ``key`` are being applied (or refused) now."""

    def resumed(self, se: StreamEvent) -> None:
        """A follow-up that waited was applied."""

    def deferred(self, key: IssueKey, se: StreamEvent) -> None:
        """A follow-up waits for its ``IssueFound``."""

    def venue_refused(self, se: StreamEvent, issue: Issue) -> None:
        """A follow-up names another venue than its issue's: it must not be applied."""

    def deadline_set(self, issue: Issue, previous: datetime | None) -> None:
        """A ``RectificationDue`` set (or replaced) the deadline; ``previous`` is the old one."""

    def recheck_failed(self, issue: Issue) -> None:
        """A ``RecheckFailed`` was applied."""

    def issue_closed(self, issue: Issue) -> None:
        """A ``RecheckPassed`` closed the issue."""

    def issue_changed(self, issue: Issue) -> None:
        """A follow-up changed the issue."""
