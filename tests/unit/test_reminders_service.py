"""The reminders' units of work on the in-memory store and a fake stream: a reminder reaches the
stream once whichever step fails (a crash, a lost confirmation), never stale, never twice."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import UUID

import pytest

from contracts.reminders import reminder_id
from services.common.campaign import load_campaign
from services.reminders.adapters.memory import MemoryReminders
from services.reminders.domain.model import OutboxEntry
from services.reminders.domain.ports import Publisher
from services.reminders.service import apply_batch, fire_due, publish_outbox
from tests import factories as f
from tests.read_model_suite import stream

pytestmark = pytest.mark.unit
CAMPAIGN = load_campaign()
WINDOW = timedelta(hours=24)
V = "LY-FM-007"
T0 = f.at("2023-03-01 10:00")


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class FakeStream(Publisher):
    """A stream with JetStream's de-duplication by ``Nats-Msg-Id`` within a window."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.messages: list[OutboxEntry] = []
        self.seen: dict[UUID, datetime] = {}
        self.lose_confirmations = False
        self.down = False

    async def publish(self, entries: Sequence[OutboxEntry]) -> list[UUID]:
        if self.down:
            return []
        for e in entries:
            first = self.seen.get(e.reminder_id)
            if first is None or self.clock() - first > WINDOW:
                self.seen[e.reminder_id] = self.clock()
                self.messages.append(e)
        return [] if self.lose_confirmations else [e.reminder_id for e in entries]


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


async def _scenario_setup(clock: Clock) -> tuple[MemoryReminders, datetime]:
    store = MemoryReminders()
    due = T0 + timedelta(days=5)
    events = stream([f.issue(V, "I1", T0), f.due(V, "I1", T0, due)])
    await apply_batch(store, events, 2, campaign=CAMPAIGN, clock=clock)
    return store, due


async def _unpublished(store: MemoryReminders) -> int:
    async with store.unit() as unit:
        return await unit.unpublished_count()


def test_a_lost_confirmation_publishes_again_and_the_stream_keeps_one_copy() -> None:
    async def scenario() -> None:
        clock = Clock(T0)
        store, due = await _scenario_setup(clock)
        fake = FakeStream(clock)
        clock.now = due + timedelta(seconds=1)
        fired = await fire_due(store, campaign=CAMPAIGN, clock=clock)
        # The due_soon timers (72h and 24h before) fell due more than stale_after ago: skipped.
        assert fired.recorded == 1
        assert fired.tally.skipped[("due_soon", "stale")] == 2
        # Published, but the process dies before it hears back: nothing is marked.
        fake.lose_confirmations = True
        report = await publish_outbox(store, fake, clock=clock, duplicate_window=WINDOW)
        assert (len(report.published), report.failed) == (0, 1)
        assert await _unpublished(store) == 1  # what cw_reminders_unpublished shows
        fake.lose_confirmations = False
        report = await publish_outbox(store, fake, clock=clock, duplicate_window=WINDOW)
        assert len(report.published) == 1
        assert await _unpublished(store) == 0
        assert [e.reminder_id for e in fake.messages] == [
            reminder_id(f.DISTRICT, "overdue", issue_id="I1", deadline=due)
        ]
        # The missed digest was stale; the next one (less than stale_after ago) is due now, and
        # after it nothing is due or unpublished any more.
        again = await fire_due(store, campaign=CAMPAIGN, clock=clock)
        report = await publish_outbox(store, fake, clock=clock, duplicate_window=WINDOW)
        assert again.recorded == 1 and [e.kind for e in report.published] == ["digest"]
        assert (await fire_due(store, campaign=CAMPAIGN, clock=clock)).recorded == 0
        report = await publish_outbox(store, fake, clock=clock, duplicate_window=WINDOW)
        assert not report.published and len(fake.messages) == 2

    run(scenario())


def test_a_crash_before_the_outbox_commits_leaves_the_timer_due() -> None:
    async def scenario() -> None:
        clock = Clock(T0)
        store, due = await _scenario_setup(clock)
        clock.now = due + timedelta(seconds=1)
        before = store.state

        class Crash(Exception):
            pass

        async def crash_in_unit() -> None:
            async with store.unit() as unit:
                await unit.settle(await unit.due_timers(clock(), 10))
                raise Crash

        with pytest.raises(Crash):
            await crash_in_unit()
        assert store.state is before  # rolled back
        assert (await fire_due(store, campaign=CAMPAIGN, clock=clock)).recorded == 1
        assert [t.kind for t in store.state.timers.values() if t.state == "sent"] == ["overdue"]

    run(scenario())


def test_an_entry_older_than_the_duplicate_window_is_never_published_again() -> None:
    async def scenario() -> None:
        clock = Clock(T0)
        store, due = await _scenario_setup(clock)
        fake = FakeStream(clock)
        clock.now = due
        await fire_due(store, campaign=CAMPAIGN, clock=clock)
        fake.down = True
        await publish_outbox(store, fake, clock=clock, duplicate_window=WINDOW)
        fake.down = False
        clock.now += WINDOW
        report = await publish_outbox(store, fake, clock=clock, duplicate_window=WINDOW)
        # overdue and due_soon 2 (exactly stale_after old at `due`: not yet stale) expired.
        assert (len(report.expired), len(report.published), fake.messages) == (2, 0, [])

    run(scenario())


def test_redelivered_and_republished_events_change_nothing() -> None:
    async def scenario() -> None:
        clock = Clock(T0)
        store, _ = await _scenario_setup(clock)
        timers = dict(store.state.timers)
        events = [f.issue(V, "I2", T0), f.recheck_passed(V, "I2", T0)]
        first = await apply_batch(store, stream(events, 3), 4, campaign=CAMPAIGN, clock=clock)
        again = await apply_batch(store, stream(events, 3), 4, campaign=CAMPAIGN, clock=clock)
        republished = await apply_batch(store, stream(events, 5), 6, campaign=CAMPAIGN,
                                        clock=clock)  # fmt: skip
        assert (first.applied, again.already_done, republished.duplicates) == (2, 2, 2)
        assert republished.timers_written == 0
        new = set(store.state.timers) - set(timers)
        kinds = sorted(store.state.timers[rid].kind for rid in new)
        assert kinds == ["look_back_due", "no_order"]
        assert store.state.checkpoint == 6

    run(scenario())


def test_history_older_than_stale_after_records_skips_and_sends_nothing() -> None:
    async def scenario() -> None:
        clock = Clock(T0 + timedelta(days=365))
        store = MemoryReminders()
        events = stream([f.issue(V, "I1", T0), f.due(V, "I1", T0, T0 + timedelta(days=5))])
        report = await apply_batch(store, events, 2, campaign=CAMPAIGN, clock=clock)
        assert sum(report.tally.skipped.values()) == 7
        assert (await fire_due(store, campaign=CAMPAIGN, clock=clock)).recorded == 0
        assert [t.kind for t in store.state.timers.values() if t.state == "pending"] == ["digest"]

    run(scenario())
