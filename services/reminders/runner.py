"""The reminders service's two loops in one process:

- ``ReminderConsumer``: the consumer kit's loop (``services.consumer.loop``) following
  ``CW_EVENTS`` with its own durable and checkpoint; each committed batch that wrote timers wakes
  the dispatcher (an in-process event: no polling);
- ``Dispatcher``: sleeps until the next timer's moment or until woken, settles what is due into
  the outbox, publishes the outbox. It starts firing only once the consumer has caught up with
  the stream as it stood at start: a backlog of events may still cancel timers that fell due
  while the service was down (a recheck that passed), and must be read first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import TypeVar

from services.common.campaign import Campaign
from services.common.retry import FOREVER, RetryPolicy, retry
from services.consumer.loop import Consumer
from services.consumer.model import Outcome, Prepared, StreamEvent, StreamPlace, Tracked
from services.consumer.ports import DeadLetters, Fenced, Source, Unstorable, Writer
from services.reminders.adapters.metrics import ReminderMetrics
from services.reminders.domain.model import BatchReport, Tally
from services.reminders.domain.ports import Clock, Publisher, ReminderStore
from services.reminders.service import apply_batch, fire_due, publish_outbox

log = logging.getLogger("cw.reminders")
T = TypeVar("T")


class CaughtUp:
    """Whether the consumer has read the stream as far as it reached when the service started."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.event = asyncio.Event()
        if target <= 0:
            self.event.set()

    def reached(self, checkpoint: int) -> None:
        if checkpoint >= self.target and not self.event.is_set():
            log.info("caught up with CW_EVENTS at %s: firing timers", checkpoint)
            self.event.set()

    def idle(self) -> None:
        """Nothing more came (the stream's last messages may have been deleted)."""
        self.event.set()


class _WatchedSource:
    """The event source, telling ``CaughtUp`` when a fetch finds nothing more."""

    def __init__(self, source: Source, caught_up: CaughtUp) -> None:
        self._source = source
        self._caught_up = caught_up

    @property
    def stream(self) -> str:
        return self._source.stream

    async def place(self, seq: int) -> StreamPlace:
        return await self._source.place(seq)

    async def start(self, after_seq: int) -> None:
        await self._source.start(after_seq)

    async def restart(self, after_seq: int) -> None:
        await self._source.restart(after_seq)

    def needs_restart(self) -> str | None:
        return self._source.needs_restart()

    def invalidate(self, reason: str, detail: str = "") -> None:
        self._source.invalidate(reason, detail)

    async def next_batch(self, wait_s: float) -> list[Prepared]:
        batch = await self._source.next_batch(wait_s)
        if not batch and self._source.needs_restart() is None:
            self._caught_up.idle()
        return batch

    async def ack_taken(self) -> None:
        await self._source.ack_taken()

    async def stop(self) -> None:
        await self._source.stop()


class ReminderConsumer(Consumer[BatchReport]):
    """Follows ``CW_EVENTS``: the issue lifecycle and the timers it derives, exactly once."""

    name = "reminders"

    def __init__(
        self,
        source: Source,
        store: ReminderStore,
        campaign: Campaign,
        metrics: ReminderMetrics,
        *,
        clock: Clock,
        wakeup: asyncio.Event,
        caught_up: CaughtUp,
        writer: Writer | None = None,
        dead_letters: DeadLetters | None = None,
        fetch_wait: timedelta = timedelta(seconds=1),
        retry_policy: RetryPolicy = FOREVER,
    ) -> None:
        super().__init__(
            _WatchedSource(source, caught_up),
            metrics,
            dead_letters=dead_letters,
            writer=writer,
            fetch_wait=fetch_wait,
            retry_policy=retry_policy,
        )
        self.store = store
        self.campaign = campaign
        self.clock = clock
        self.wakeup = wakeup
        self.caught_up = caught_up

    async def tracked(self) -> Tracked:
        tracked = await self.store.tracked()
        self.caught_up.reached(tracked.seq)
        return tracked

    async def apply(
        self, events: Sequence[StreamEvent], through: Tracked, outcomes: Sequence[Outcome]
    ) -> BatchReport:
        report = await apply_batch(
            self.store, events, through.seq, campaign=self.campaign, clock=self.clock,
            through_id=through.message_id,
        )  # fmt: skip
        if report.timers_written:
            self.wakeup.set()
        self.caught_up.reached(report.checkpoint)
        return report

    def merge(self, first: BatchReport, second: BatchReport) -> BatchReport:
        tally = Tally()
        tally.add(first.tally)
        tally.add(second.tally)
        return BatchReport(
            applied=first.applied + second.applied,
            duplicates=first.duplicates + second.duplicates,
            already_done=first.already_done + second.already_done,
            checkpoint=max(first.checkpoint, second.checkpoint),
            tally=tally,
            timers_written=first.timers_written + second.timers_written,
        )


class Dispatcher:
    """Fires due timers into the outbox and publishes it, on time: it sleeps until the next
    timer's moment, and is woken at once when a batch writes new timers."""

    def __init__(
        self,
        store: ReminderStore,
        publisher: Publisher,
        campaign: Campaign,
        metrics: ReminderMetrics,
        *,
        clock: Clock,
        wakeup: asyncio.Event,
        caught_up: CaughtUp,
        duplicate_window: timedelta,
        retry_policy: RetryPolicy = FOREVER,
    ) -> None:
        self.store = store
        self.publisher = publisher
        self.campaign = campaign
        self.metrics = metrics
        self.clock = clock
        self.wakeup = wakeup
        self.caught_up = caught_up
        self.duplicate_window = duplicate_window
        self.retry_policy = retry_policy
        self.stopping = asyncio.Event()

    def stop(self) -> None:
        self.stopping.set()
        self.wakeup.set()

    async def run(self) -> None:
        # What the outbox holds from before a crash goes out first, caught up or not: it was
        # recorded as sent already.
        await self._retry("publish", self._publish_all)
        await self._until(self.caught_up.event, None)
        while not self.stopping.is_set():
            self.wakeup.clear()
            await self._retry("fire", self.round)
            next_at = await self._retry("database", self._next_fire_at)
            if next_at is None:
                await self._until(self.wakeup, None)
                continue
            delay = (next_at - self.clock()).total_seconds()
            if delay > 0:
                await self._until(self.wakeup, delay)

    async def round(self) -> None:
        """Settle everything due now, and publish it."""
        while True:
            fired = await fire_due(self.store, campaign=self.campaign, clock=self.clock)
            self.metrics.tally(fired.tally)
            if fired.recorded:
                await self._publish_all()
            if not fired.more:
                return

    async def _publish_all(self) -> None:
        while True:
            report = await publish_outbox(
                self.store, self.publisher, clock=self.clock,
                duplicate_window=self.duplicate_window,
            )  # fmt: skip
            self.metrics.published(report.published, self.clock())
            if report.expired:
                log.error(
                    "%s reminders recorded more than the duplicate window ago were never "
                    "confirmed: not published again, to never put a second copy in CW_REMINDERS",
                    len(report.expired),
                )
                self.metrics.expired(report.expired)
            if report.failed:
                raise ConnectionError(f"{report.failed} reminders not confirmed by CW_REMINDERS")
            if not report.more:
                return

    async def _next_fire_at(self) -> datetime | None:
        async with self.store.unit() as unit:
            return await unit.next_fire_at()

    async def watch_pending(self, every_s: float = 5.0) -> None:
        """``cw_reminders_pending{kind}`` and ``cw_reminders_unpublished``, refreshed every few
        seconds."""
        while True:
            with contextlib.suppress(Exception):
                async with self.store.unit() as unit:
                    self.metrics.pending_now(await unit.pending_counts())
                    self.metrics.unpublished.set(await unit.unpublished_count())
            await asyncio.sleep(every_s)

    async def _until(self, event: asyncio.Event, within_s: float | None) -> None:
        if self.stopping.is_set():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(_first(event, self.stopping), within_s)

    async def _retry(self, stage: str, attempt: Callable[[], Awaitable[T]]) -> T:
        return await retry(
            f"reminders {stage}",
            attempt,
            policy=self.retry_policy,
            never=(Fenced, Unstorable),
            on_retry=lambda _exc, _pause: self.metrics.retried(stage),
            give_up=self.stopping.is_set,
        )


async def _first(*events: asyncio.Event) -> None:
    waits = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
