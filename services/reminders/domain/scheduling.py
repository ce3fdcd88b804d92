"""Timers from the issue lifecycle: which reminders an event schedules or cancels.

The lifecycle itself (first ``IssueFound`` wins, closed stays closed, follow-ups wait for their
issue, ids per district, rebounds) is ``services.common.lifecycle``, the projector's rules;
``Scheduling`` only hears what happened and turns it into timers:
- ``IssueFound``: ``no_order`` after ``order_within``; ``rebound_detected`` at once when the
  issue is a rebound; the district's daily digest, if it has none to come;
- ``RectificationDue``: cancels ``no_order`` and every pending timer of an older deadline, and
  schedules the new deadline's ``due_soon`` levels, ``overdue`` and ``escalation`` levels;
- ``RecheckFailed``: nothing;
- ``RecheckPassed``: cancels every pending timer of the issue, schedules ``look_back_due``.

A timer whose moment has passed when it is scheduled (by the service's clock, ``now``) is a
``due_soon`` skipped as ``passed`` (a nearer one or ``overdue`` follows), or, older than
``stale_after``, skipped as ``stale``; otherwise it is pending and fires at once. Reading years
of history therefore schedules nothing stale.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from contracts import IssueFound, VenueRegistered
from contracts.reminders import reminder_id
from services.common.campaign import ReminderRules
from services.common.lifecycle import ISSUE_EVENTS, Issue, IssueKey, IssueLifecycle
from services.consumer.model import StreamEvent
from services.reminders.domain.model import (
    DEADLINE_KINDS,
    Changes,
    Snapshot,
    Tally,
    Timer,
    TimerState,
    Venue,
)


def state_when_scheduled(
    kind: str, fire_at: datetime, now: datetime, stale_after: timedelta
) -> tuple[TimerState, str | None]:
    """A new timer is pending, or skipped (with the reason) if its moment has already gone."""
    if kind == "due_soon" and fire_at <= now:
        return "skipped", "passed"
    if fire_at < now - stale_after:
        return "skipped", "stale"
    return "pending", None


def is_stale(fire_at: datetime, now: datetime, stale_after: timedelta) -> bool:
    """A due timer older than ``stale_after`` is recorded as skipped, never sent."""
    return fire_at < now - stale_after


def next_digest(after: datetime, at: time, tz: ZoneInfo) -> tuple[datetime, date]:
    """The first daily digest moment strictly after ``after``, and its local date."""
    local = after.astimezone(tz)
    day = local.date()
    while True:
        moment = datetime.combine(day, at, tzinfo=tz)
        if moment > after:
            return moment, day
        day += timedelta(days=1)


def digest_timer(district: str, after: datetime, rules: ReminderRules, tz: ZoneInfo) -> Timer:
    fire_at, day = next_digest(after, rules.digest_at, tz)
    rid = reminder_id(district, "digest", local_date=day)
    return Timer(rid, district, "digest", 0, fire_at, "pending")


class Scheduling(IssueLifecycle):
    """Applies a batch's events to the state it needs and collects the timers they change."""

    def __init__(
        self,
        snapshot: Snapshot,
        rules: ReminderRules,
        tz: ZoneInfo,
        rebound_window: timedelta,
        now: datetime,
    ) -> None:
        super().__init__(snapshot.issues, snapshot.closures, snapshot.pending, rebound_window)
        self._rules = rules
        self._tz = tz
        self._now = now
        self._timers = {
            key: {t.reminder_id: t for t in timers} for key, timers in snapshot.timers.items()
        }
        self._digests = set(snapshot.digest_districts)
        self.changes = Changes()

    @property
    def tally(self) -> Tally:
        return self.changes.tally

    def apply_all(self, events: Iterable[StreamEvent]) -> Changes:
        for se in events:
            self.apply(se)
        return self.changes

    def apply(self, se: StreamEvent) -> None:
        ev = se.event
        kind = type(ev)
        if kind is VenueRegistered:
            assert type(ev) is VenueRegistered
            d = ev.data
            self.changes.venues[(ev.district, ev.venue_id)] = Venue(
                district=ev.district,
                venue_id=ev.venue_id,
                name=d.name,
                first_responsible_name=d.first_responsible.name,
                first_responsible_phone=d.first_responsible.phone,
                officer_name=d.officer.name if d.officer else None,
                officer_phone=d.officer.phone if d.officer else None,
            )
        elif kind is IssueFound:
            self.find(ev, se.phase)  # type: ignore[arg-type]
        elif kind in ISSUE_EVENTS:
            self.follow(se)
        # Inspections, and types the contract may gain, schedule nothing.

    # -- what the lifecycle tells us ----------------------------------------------------------

    def issue_found(self, issue: Issue) -> None:
        self.changes.issues[issue.key] = issue
        self._schedule(issue, "no_order", 0, issue.found_at + self._rules.order_within)
        if issue.rebound:
            self._schedule(issue, "rebound_detected", 0, issue.found_at)
        if issue.district not in self._digests:
            self._digests.add(issue.district)
            timer = digest_timer(issue.district, self._now, self._rules, self._tz)
            self.changes.timers[timer.reminder_id] = timer
            self.tally.scheduled["digest"] += 1

    def waiting_resolved(self, key: IssueKey) -> None:
        self.changes.pending_resolved.add(key)
        self.changes.pending_added = [p for p in self.changes.pending_added if p[0] != key]

    def deferred(self, key: IssueKey, se: StreamEvent) -> None:
        self.changes.pending_added.append((key, se))

    def venue_refused(self, se: StreamEvent, issue: Issue) -> None:
        self.changes.refused.append(se)

    def deadline_set(self, issue: Issue, previous: datetime | None) -> None:
        due = issue.due_at
        assert due is not None
        self._cancel(
            issue,
            lambda t: t.kind == "no_order" or (t.kind in DEADLINE_KINDS and t.deadline != due),
        )
        for level, offset in enumerate(self._rules.due_soon, start=1):
            self._schedule(issue, "due_soon", level, due - offset, deadline=due)
        self._schedule(issue, "overdue", 0, due, deadline=due)
        for level in range(1, self._rules.escalate_max + 1):
            fire_at = due + level * self._rules.escalate_every
            self._schedule(issue, "escalation", level, fire_at, deadline=due)

    def issue_closed(self, issue: Issue) -> None:
        assert issue.closed_at is not None
        self._cancel(issue, lambda t: True)
        self._schedule(issue, "look_back_due", 0, issue.closed_at + self._rules.look_back_after)

    def issue_changed(self, issue: Issue) -> None:
        self.changes.issues[issue.key] = issue

    # -- timers -------------------------------------------------------------------------------

    def _schedule(
        self,
        issue: Issue,
        kind: str,
        level: int,
        fire_at: datetime,
        *,
        deadline: datetime | None = None,
    ) -> None:
        rid = reminder_id(
            issue.district, kind, issue_id=issue.issue_id, level=level, deadline=deadline
        )
        timers = self._timers.setdefault(issue.key, {})
        existing = timers.get(rid)
        if existing is not None and existing.state != "cancelled":
            return  # the same reminder is already to come, or was sent or skipped: once
        state, reason = state_when_scheduled(kind, fire_at, self._now, self._rules.stale_after)
        timer = Timer(
            rid, issue.district, kind, level, fire_at, state, issue.issue_id, deadline, reason
        )
        timers[rid] = timer
        self.changes.timers[rid] = timer
        if state == "pending":
            self.tally.scheduled[kind] += 1
        else:
            self.tally.skipped[(kind, reason or "")] += 1

    def _cancel(self, issue: Issue, which: Callable[[Timer], bool]) -> None:
        for timer in self._timers.get(issue.key, {}).values():
            if timer.state == "pending" and timer.kind != "digest" and which(timer):
                timer.state = "cancelled"
                self.changes.timers[timer.reminder_id] = timer
                self.tally.cancelled[timer.kind] += 1


def schedule(
    snapshot: Snapshot,
    events: Iterable[StreamEvent],
    *,
    rules: ReminderRules,
    tz: ZoneInfo,
    rebound_window: timedelta,
    now: datetime,
) -> Changes:
    """Apply ``events`` (stream order) to ``snapshot``; return what changed, timers included."""
    return Scheduling(snapshot, rules, tz, rebound_window, now).apply_all(events)
