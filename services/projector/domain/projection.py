"""How events change the read model: the lifecycle of an issue, a venue's counters, rebounds.

Given the stored state a batch needs (a ``Snapshot``) and the batch's events in stream order,
``project`` returns the ``Changes``. The result does not depend on where batch boundaries fall,
which is what makes a rebuild equal to the live projection.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from contracts import (
    InspectionRecorded,
    IssueFound,
    RecheckFailed,
    RecheckPassed,
    RectificationDue,
    VenueRegistered,
)
from services.projector.domain.model import (
    Changes,
    Issue,
    IssueKey,
    IssueStatus,
    ItemAtVenue,
    Needs,
    Refusal,
    Snapshot,
    StreamEvent,
    Venue,
    VenueAsOf,
    VenuePhaseCounts,
)

ISSUE_EVENTS = (RectificationDue, RecheckFailed, RecheckPassed)
ISSUE_EVENT_TYPES = frozenset(t.__name__ for t in ISSUE_EVENTS)


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


class Projection:
    """Applies events one by one to a working copy of the state a batch touches."""

    def __init__(self, snapshot: Snapshot, rebound_window: timedelta) -> None:
        self._issues = snapshot.issues
        self._closures = snapshot.closures
        self._pending = snapshot.pending
        self._window = rebound_window
        self.changes = Changes()

    def apply_all(self, events: Iterable[StreamEvent]) -> Changes:
        for se in events:
            self.apply(se)
        return self.changes

    def apply(self, se: StreamEvent) -> None:
        # Dispatch on the type itself: isinstance() on pydantic models goes through ABCMeta and
        # is a measurable share of the projector's time.
        ev = se.event
        kind = type(ev)
        if kind is VenueRegistered:
            self._register_venue(ev)  # type: ignore[arg-type]
        elif kind is InspectionRecorded:
            counts = self._counts(ev.district, ev.venue_id, se.phase)
            counts.inspections += 1
            if counts.last_inspected_at is None or ev.occurred_at > counts.last_inspected_at:
                counts.last_inspected_at = ev.occurred_at
        elif kind is IssueFound:
            if not self._find_issue(ev, se.phase):  # type: ignore[arg-type]
                return
        elif kind in ISSUE_EVENTS:
            issue = self._issues.get((ev.district, ev.data.issue_id))  # type: ignore[union-attr]
            if issue is None:
                # Its IssueFound has not arrived (another publisher, a late upload): keep it.
                self._defer(se)
                return
            if issue.venue_id != ev.venue_id:
                self._refuse_venue(se, issue)
                return
            self._apply_to_issue(issue, se)
        else:
            # A type the contract gained after this projection was written: a dead letter to
            # replay once the projection knows it, never an assertion that stalls every district.
            self.changes.refused.append(
                Refusal(
                    se,
                    "unhandled_event_type",
                    "event_type",
                    f"the projector does not handle {ev.event_type} events (yet)",
                )
            )
            return
        self._count_applied(se)

    # -- venues -------------------------------------------------------------------------------

    def _register_venue(self, ev: VenueRegistered) -> None:
        d = ev.data
        self.changes.venues[(ev.district, ev.venue_id)] = Venue(
            district=ev.district,
            venue_id=ev.venue_id,
            name=d.name,
            kind=d.kind,
            street=d.street,
            address=d.address,
            first_responsible_name=d.first_responsible.name,
            first_responsible_phone=d.first_responsible.phone,
            officer_name=d.officer.name if d.officer else None,
            officer_phone=d.officer.phone if d.officer else None,
            registered_at=ev.occurred_at,
        )

    # -- issues -------------------------------------------------------------------------------

    def _find_issue(self, ev: IssueFound, phase: str) -> bool:
        key = (ev.district, ev.data.issue_id)
        if key in self._issues:
            # The same issue reported again under a new event id: the first report stands.
            return False
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
        self.changes.issues[key] = issue
        counts = self._counts(ev.district, ev.venue_id, phase)
        counts.issues_found += 1
        counts.rebounds += int(rebound)
        waiting = self._pending.pop(key, None)
        if waiting is not None:
            self.changes.pending_resolved.add(key)
            self.changes.pending_added = [p for p in self.changes.pending_added if p[0] != key]
            for se in sorted(waiting, key=lambda s: s.seq):
                if se.event.venue_id != issue.venue_id:
                    self._refuse_venue(se, issue)
                    continue
                self._apply_to_issue(issue, se)
                self._count_applied(se)
                self.changes.resumed += 1
        return True

    def _apply_to_issue(self, issue: Issue, se: StreamEvent) -> None:
        ev = se.event
        if issue.closed_at is not None:
            # A closed issue (销号) stays closed; a problem that comes back is a new issue.
            return
        kind = type(ev)
        if kind is RectificationDue:
            assert type(ev) is RectificationDue
            issue.due_at = ev.data.due_at
            issue.order_no = ev.data.order_no
            issue.assignee = ev.data.assignee
        elif kind is RecheckFailed:
            issue.recheck_failures += 1
            self._counts(issue.district, issue.venue_id, issue.phase).recheck_failures += 1
        elif kind is RecheckPassed:
            issue.closed_at = ev.occurred_at
            issue.closed_on_time = issue.due_at is None or ev.occurred_at <= issue.due_at
            counts = self._counts(issue.district, issue.venue_id, issue.phase)
            counts.issues_closed += 1
            counts.closed_on_time += int(issue.closed_on_time)
            item = (issue.district, issue.venue_id, issue.item_code)
            self._closures.setdefault(item, []).append(ev.occurred_at)
        else:  # pragma: no cover - the caller passes issue events only
            raise TypeError(f"not an issue event: {ev.event_type}")
        self.changes.issues[issue.key] = issue

    def _refuse_venue(self, se: StreamEvent, issue: Issue) -> None:
        # Per-district permissions authorise a district, not a venue: a follow-up naming another
        # venue must not close (or extend) that venue's issue.
        self.changes.refused.append(
            Refusal(
                se,
                "venue_mismatch",
                "venue_id",
                f"issue {issue.issue_id} belongs to venue {issue.venue_id}, "
                f"not {se.event.venue_id}",
                issue_venue=issue.venue_id,
            )
        )

    def _defer(self, se: StreamEvent) -> None:
        ev = se.event
        key = (ev.district, ev.data.issue_id)  # type: ignore[union-attr]
        self._pending.setdefault(key, []).append(se)
        self.changes.pending_added.append((key, se))
        self.changes.deferred += 1

    # -- counters -----------------------------------------------------------------------------

    def _counts(self, district: str, venue_id: str, phase: str) -> VenuePhaseCounts:
        key = (district, venue_id, phase)
        counts = self.changes.counts.get(key)
        if counts is None:
            counts = self.changes.counts[key] = VenuePhaseCounts()
        return counts

    def _count_applied(self, se: StreamEvent) -> None:
        t = se.event.event_type
        self.changes.applied[t] = self.changes.applied.get(t, 0) + 1


def project(
    snapshot: Snapshot, events: Sequence[StreamEvent], rebound_window: timedelta
) -> Changes:
    """Apply ``events`` (stream order) to ``snapshot``; return what changed."""
    return Projection(snapshot, rebound_window).apply_all(events)


def venues_as_of(
    history: Sequence[StreamEvent], moment: datetime, rebound_window: timedelta
) -> list[VenueAsOf]:
    """A venue id's issues at ``moment``, one ``VenueAsOf`` per district it has events in (its
    whole archived ``history`` is given): none means no system ever sent anything about it."""
    issues = issues_as_of(history, moment, rebound_window)
    registrations = [se for se in history if se.event.event_type == "VenueRegistered"]
    then = project(Snapshot(), [se for se in registrations if se.event.occurred_at <= moment],
                   rebound_window).venues  # fmt: skip
    first: dict[tuple[str, str], Venue] = {}
    for se in registrations:
        if se.event.occurred_at > moment:
            for key, venue in project(Snapshot(), [se], rebound_window).venues.items():
                first.setdefault(key, venue)
    keys = sorted({(se.event.district, se.event.venue_id) for se in history})
    return [
        VenueAsOf(
            district=district,
            venue_id=venue_id,
            venue=then.get((district, venue_id)) or first.get((district, venue_id)),
            issues=tuple(
                (issue, status)
                for issue, status in issues
                if (issue.district, issue.venue_id) == (district, venue_id)
            ),
        )
        for district, venue_id in keys
    ]


def issues_as_of(
    history: Sequence[StreamEvent], moment: datetime, rebound_window: timedelta
) -> list[tuple[Issue, IssueStatus]]:
    """Issues as they stood at ``moment``: the events that had happened by then, replayed."""
    happened = [se for se in history if se.event.occurred_at <= moment]
    changes = project(Snapshot(), happened, rebound_window)
    issues = sorted(changes.issues.values(), key=lambda i: (i.found_at, i.issue_id))
    return [(issue, issue.status(moment)) for issue in issues]
