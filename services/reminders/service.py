"""The reminders' service layer: three units of work, each exactly once.

- ``apply_batch``: a batch of ``CW_EVENTS`` moves the issues, their timers and the checkpoint in
  one transaction (redeliveries and republished events change nothing);
- ``fire_due``: due timers are settled (sent, or skipped as stale or with nothing to say) in the
  transaction that records their reminders in the outbox;
- ``publish_outbox``: what the outbox holds is published with ``Nats-Msg-Id = reminder_id``,
  then marked. A crash between the two publishes it again, and the stream's duplicate window
  drops the second copy; an entry older than the window is not published again (it would be
  stale anyway) but marked expired, so that no second copy can ever reach ``CW_REMINDERS``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from contracts import IssueFound
from contracts.reminders import Reminder, reminder_subject
from services.common.campaign import Campaign
from services.common.lifecycle import needs_of
from services.consumer.model import StreamEvent
from services.reminders.domain.firing import digest_reminder, issue_reminder
from services.reminders.domain.model import BatchReport, Changes, OutboxEntry, Tally, Timer
from services.reminders.domain.ports import Clock, Publisher, ReminderStore
from services.reminders.domain.scheduling import digest_timer, is_stale, schedule

FIRE_LIMIT = 500
"""Most timers settled in one transaction (a burst goes out in several)."""
PUBLISH_LIMIT = 1000
WINDOW_MARGIN = timedelta(minutes=1)
"""Clock differences between this service and NATS: an entry is republished only well inside the
stream's duplicate window."""


async def apply_batch(
    store: ReminderStore,
    events: Sequence[StreamEvent],
    through_seq: int,
    *,
    campaign: Campaign,
    clock: Clock,
    through_id: str | None = None,
) -> BatchReport:
    """Apply ``events`` and move the checkpoint to ``through_seq`` (the id of its message:
    ``through_id``) in one transaction."""
    async with store.unit() as unit:
        checkpoint = await unit.checkpoint()
        fresh = [se for se in events if se.seq > checkpoint]
        already_done = len(events) - len(fresh)
        new_seqs = await unit.remember(fresh) if fresh else set()
        new = [se for se in fresh if se.seq in new_seqs]
        changes = Changes()
        if new:
            districts = {se.event.district for se in new if type(se.event) is IssueFound}
            snapshot = await unit.load(needs_of(new, campaign.rebound_window), districts)
            changes = schedule(
                snapshot, new, rules=campaign.reminders, tz=campaign.timezone,
                rebound_window=campaign.rebound_window, now=clock(),
            )  # fmt: skip
            await unit.save(changes)
            # Refused follow-ups (another venue than their issue's) are the projector's dead
            # letters; their fix may be replayed under the same event id.
            await unit.forget(changes.refused)
        if through_seq > checkpoint:
            await unit.set_checkpoint(through_seq, through_id)
            checkpoint = through_seq
    return BatchReport(
        applied=len(new) - len(changes.refused),
        duplicates=len(fresh) - len(new),
        already_done=already_done,
        checkpoint=checkpoint,
        tally=changes.tally,
        timers_written=len(changes.timers),
    )


@dataclass(frozen=True, slots=True)
class FireReport:
    recorded: int
    tally: Tally = field(default_factory=Tally)
    more: bool = False
    """The limit was reached: more timers may be due."""


async def fire_due(
    store: ReminderStore, *, campaign: Campaign, clock: Clock, limit: int = FIRE_LIMIT
) -> FireReport:
    """Settle the timers due now, oldest first, recording their reminders in the outbox."""
    rules, tz = campaign.reminders, campaign.timezone
    tally = Tally()
    async with store.unit() as unit:
        now = clock()
        due = await unit.due_timers(now, limit)
        if not due:
            return FireReport(0)
        keys = {(t.district, t.issue_id) for t in due if t.issue_id is not None}
        issues = await unit.issues(keys)
        venues = await unit.venues({(i.district, i.venue_id) for i in issues.values()})
        settled: list[Timer] = []
        entries: list[OutboxEntry] = []
        following: list[Timer] = []
        for timer in due:
            settled.append(timer)
            if timer.kind == "digest":
                # The next one: the first that will not be stale (after a long stop, one day's
                # digest is sent on start, not one per day missed).
                nxt = digest_timer(timer.district, max(timer.fire_at, now - rules.stale_after),
                                   rules, tz)  # fmt: skip
                following.append(nxt)
                tally.scheduled["digest"] += 1
            if is_stale(timer.fire_at, now, rules.stale_after):
                _skip(timer, "stale", tally)
                continue
            reminder: Reminder | None
            if timer.kind == "digest":
                open_issues = await unit.open_issues(timer.district)
                where = await unit.venues({(i.district, i.venue_id) for i in open_issues})
                reminder = digest_reminder(timer, open_issues, where, rules=rules, tz=tz,
                                           issued_at=now, names=campaign.names)  # fmt: skip
                if reminder is None:
                    _skip(timer, "nothing_open", tally)
                    continue
            else:
                issue = issues[(timer.district, timer.issue_id or "")]
                venue = venues.get((issue.district, issue.venue_id))
                reminder = issue_reminder(timer, issue, venue, rules=rules, tz=tz, issued_at=now,
                                          names=campaign.names)  # fmt: skip
            timer.state = "sent"
            entries.append(
                OutboxEntry(
                    reminder_id=reminder.reminder_id,
                    kind=reminder.kind,
                    subject=reminder_subject(reminder.district, reminder.venue_id, reminder.kind),
                    payload=reminder.model_dump_json().encode(),
                    fire_at=timer.fire_at,
                    recorded_at=now,
                )
            )
        await unit.settle(settled)
        await unit.record(entries)
        await unit.add_timers(following)
    return FireReport(len(entries), tally, more=len(due) == limit)


def _skip(timer: Timer, reason: str, tally: Tally) -> None:
    timer.state = "skipped"
    timer.reason = reason
    tally.skipped[(timer.kind, reason)] += 1


@dataclass(frozen=True, slots=True)
class PublishReport:
    published: list[OutboxEntry] = field(default_factory=list)
    expired: list[OutboxEntry] = field(default_factory=list)
    failed: int = 0
    more: bool = False


async def publish_outbox(
    store: ReminderStore,
    publisher: Publisher,
    *,
    clock: Clock,
    duplicate_window: timedelta,
    limit: int = PUBLISH_LIMIT,
) -> PublishReport:
    """Publish what the outbox holds, oldest first; mark what the stream confirmed."""
    async with store.unit() as unit:
        entries = await unit.unpublished(limit)
    if not entries:
        return PublishReport()
    now = clock()
    too_old = now - (duplicate_window - WINDOW_MARGIN)
    expired = [e for e in entries if e.recorded_at < too_old]
    fresh = [e for e in entries if e.recorded_at >= too_old]
    confirmed = set(await publisher.publish(fresh)) if fresh else set()
    published = [e for e in fresh if e.reminder_id in confirmed]
    async with store.unit() as unit:
        if published:
            await unit.mark_published([e.reminder_id for e in published], clock())
        if expired:
            await unit.mark_expired([e.reminder_id for e in expired], clock())
    return PublishReport(
        published, expired, failed=len(fresh) - len(published), more=len(entries) == limit
    )
