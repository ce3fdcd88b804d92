"""How events change the read model: the lifecycle of an issue (the shared rules of
``services.common.lifecycle``), venues, and a venue's counters.

Given the stored state a batch needs (a ``Snapshot``) and the batch's events in stream order,
``project`` returns the ``Changes``. The result does not depend on where batch boundaries fall,
which is what makes a rebuild equal to the live projection.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from contracts import InspectionRecorded, IssueFound, VenueRegistered
from services.common.lifecycle import (
    ISSUE_EVENT_TYPES,
    ISSUE_EVENTS,
    IssueLifecycle,
    needs_of,
)
from services.projector.domain.model import (
    Changes,
    Issue,
    IssueKey,
    IssueStatus,
    Refusal,
    Snapshot,
    StreamEvent,
    Venue,
    VenueAsOf,
    VenuePhaseCounts,
    first_registration,
)

__all__ = ["ISSUE_EVENTS", "ISSUE_EVENT_TYPES", "Projection", "issues_as_of", "needs_of", "project"]


class Projection(IssueLifecycle):
    """Applies events one by one to a working copy of the state a batch touches: the issue
    lifecycle (``services.common.lifecycle``), plus venues and a venue's counters."""

    def __init__(self, snapshot: Snapshot, rebound_window: timedelta) -> None:
        super().__init__(snapshot.issues, snapshot.closures, snapshot.pending, rebound_window)
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
            self._count_inspection(ev, se.phase)  # type: ignore[arg-type]
        elif kind is IssueFound:
            if self.find(ev, se.phase) is None:  # type: ignore[arg-type]
                return
        elif kind in ISSUE_EVENTS:
            if not self.follow(se):
                return
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
        key = (ev.district, ev.venue_id)
        before = self.changes.venues.get(key)
        self.changes.venues[key] = Venue(
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
            # The first registration's moment (coverage counts a venue in the phases it was
            # registered before the end of); the rest is the latest registration's.
            registered_at=first_registration(before, ev.occurred_at),
        )

    # -- what the lifecycle tells us ----------------------------------------------------------

    def issue_found(self, issue: Issue) -> None:
        self.changes.issues[issue.key] = issue
        counts = self._counts(issue.district, issue.venue_id, issue.phase)
        counts.issues_found += 1
        counts.rebounds += int(issue.rebound)

    def waiting_resolved(self, key: IssueKey) -> None:
        self.changes.pending_resolved.add(key)
        self.changes.pending_added = [p for p in self.changes.pending_added if p[0] != key]

    def resumed(self, se: StreamEvent) -> None:
        self._count_applied(se)
        self.changes.resumed += 1

    def deferred(self, key: IssueKey, se: StreamEvent) -> None:
        self.changes.pending_added.append((key, se))
        self.changes.deferred += 1

    def venue_refused(self, se: StreamEvent, issue: Issue) -> None:
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

    def recheck_failed(self, issue: Issue) -> None:
        self._counts(issue.district, issue.venue_id, issue.phase).recheck_failures += 1

    def issue_closed(self, issue: Issue) -> None:
        counts = self._counts(issue.district, issue.venue_id, issue.phase)
        counts.issues_closed += 1
        counts.closed_on_time += int(bool(issue.closed_on_time))

    def issue_changed(self, issue: Issue) -> None:
        self.changes.issues[issue.key] = issue

    # -- counters -----------------------------------------------------------------------------

    def _counts(self, district: str, venue_id: str, phase: str) -> VenuePhaseCounts:
        key = (district, venue_id, phase)
        counts = self.changes.counts.get(key)
        if counts is None:
            counts = self.changes.counts[key] = VenuePhaseCounts()
        return counts

    def _count_inspection(self, ev: InspectionRecorded, phase: str) -> None:
        counts = self._counts(ev.district, ev.venue_id, phase)
        counts.inspections += 1
        d = ev.data
        attr = f"inspections_{d.kind}"
        setattr(counts, attr, getattr(counts, attr) + 1)
        # The pass rate is over the items an inspection said it checked: one that gave no count
        # adds nothing to either side, and no more items fail than were checked (the contract
        # does not tie the two), so the rate stays within 0..1.
        if d.items_checked is not None:
            counts.items_checked += d.items_checked
            counts.items_failed += min(d.items_failed or 0, d.items_checked)
        if counts.last_inspected_at is None or ev.occurred_at > counts.last_inspected_at:
            counts.last_inspected_at = ev.occurred_at

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
