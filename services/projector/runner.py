"""The projector's loop: take a batch, dead-letter what is not an event, commit, then ack.

Order of effects, and why it is safe to crash anywhere:
1. rejected messages are stored in ``CW_DEAD_LETTERS`` (deduplicated by their stream sequence);
2. the batch's effects and the checkpoint commit in one PostgreSQL transaction;
3. the last message is acknowledged (``AckAll`` covers the batch).
A crash before 3 redelivers the batch; the checkpoint and the event ids make it change nothing.
A fault in 1 or 2 (PostgreSQL down, a timeout, NATS gone) retries the same batch with backoff,
forever: nothing is acknowledged or terminated because a server was away.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Protocol, TypeAlias, TypeVar

from contracts import EventRejected, decode_event
from services.common.campaign import Campaign
from services.projector.adapters.jetstream import Delivery
from services.projector.adapters.metrics import ProjectorMetrics
from services.projector.domain.model import StreamEvent
from services.projector.domain.ports import Fenced, ReadModelStore
from services.projector.service import BatchOutcome, apply_batch

log = logging.getLogger("cw.projector")
T = TypeVar("T")


class DeadLetters(Protocol):
    async def publish(self, delivery: Delivery, reason: str, field: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Rejection:
    delivery: Delivery
    reason: str
    field: str
    kind: str

    @property
    def seq(self) -> int:
        return self.delivery.seq


Prepared: TypeAlias = StreamEvent | Rejection


class Source(Protocol):
    async def start(self, after_seq: int) -> None: ...
    async def next_batch(self, wait_s: float) -> list[Prepared]: ...
    async def ack_taken(self) -> None: ...
    async def stop(self) -> None: ...


def classify(exc: EventRejected) -> str:
    """A small, fixed set of reasons for the metric label (the full reason is in the DLQ)."""
    first = exc.errors[0] if exc.errors else None
    if first is None:
        return "invalid_field"
    if first.field == "(event)":
        if first.reason.startswith("malformed JSON"):
            return "malformed_json"
        if "bytes; the limit" in first.reason:
            return "too_large"
        return "not_an_object"
    if first.field == "event_type":
        return "unknown_event_type"
    if first.field == "schema_version":
        return "schema_version"
    return "invalid_field"


def decode_delivery(d: Delivery, campaign: Campaign) -> Prepared:
    try:
        event = decode_event(d.data)
    except EventRejected as exc:
        return Rejection(d, exc.reason, exc.first_field, classify(exc))
    except Exception as exc:
        # A registered upcaster that crashes on an odd event: that event is unreadable, which
        # is bad input too; it must reach the dead letters, not vanish in a callback.
        log.exception("event at sequence %s could not be read", d.seq)
        return Rejection(d, f"unreadable: {type(exc).__name__}: {exc}", "(event)", "unreadable")
    if event.subject != d.subject:
        # With per-district permissions on subjects, the subject is what NATS authorised: an
        # envelope naming another district or venue must not slip past them.
        return Rejection(
            d,
            f"subject {d.subject} does not match the event (expected {event.subject})",
            "district/venue_id/event_type",
            "subject_mismatch",
        )
    phase = event.phase or campaign.phase_of(event.occurred_at)
    return StreamEvent(seq=d.seq, event=event, raw=d.data, subject=d.subject, phase=phase)


class Backoff:
    def __init__(self, first: float = 0.05, cap: float = 5.0) -> None:
        self.first, self.cap = first, cap

    def delays(self) -> Callable[[], float]:
        current = self.first

        def next_delay() -> float:
            nonlocal current
            delay, current = current, min(self.cap, current * 2)
            return delay

        return next_delay


class Projector:
    def __init__(
        self,
        source: Source,
        store: ReadModelStore,
        campaign: Campaign,
        metrics: ProjectorMetrics,
        *,
        dead_letters: DeadLetters | None,
        fetch_wait: timedelta = timedelta(seconds=1),
        backoff: Backoff | None = None,
    ) -> None:
        self.source = source
        self.store = store
        self.campaign = campaign
        self.metrics = metrics
        self.dead_letters = dead_letters
        self.fetch_wait_s = fetch_wait.total_seconds()
        self.backoff = backoff or Backoff()
        self.stopping = asyncio.Event()
        self.before_batch: Callable[[], Awaitable[None]] | None = None

    async def checkpoint(self) -> int:
        return await self._retry("database", self.store.checkpoint)

    async def run(self) -> None:
        await self.source.start(await self.checkpoint())
        try:
            while not self.stopping.is_set():
                batch = await self.source.next_batch(self.fetch_wait_s)
                if batch:
                    await self.handle(batch)
        finally:
            await self.source.stop()

    async def handle(self, batch: Sequence[Prepared]) -> BatchOutcome:
        started = time.perf_counter()
        if self.before_batch is not None:
            await self._retry("database", self.before_batch)
        events = [p for p in batch if type(p) is StreamEvent]
        rejections = [p for p in batch if type(p) is Rejection]
        for r in rejections:
            if self.dead_letters is not None:
                await self._retry("dead_letters", partial(self.dead_letters.publish, r.delivery,
                                                          r.reason, r.field))  # fmt: skip
                log.warning("dead letter seq=%s: %s: %s", r.delivery.seq, r.field, r.reason)
            self.metrics.dead_letters.labels(r.kind).inc()
        through = batch[-1].seq
        outcome = await self._retry(
            "database",
            lambda: apply_batch(self.store, events, through, self.campaign.rebound_window),
        )
        try:
            await self.source.ack_taken()
        except Exception as exc:  # the batch is committed: a redelivery will change nothing
            log.warning("ack after commit failed (%s); the batch will be redelivered", exc)
        self._observe(outcome, len(batch), time.perf_counter() - started)
        return outcome

    def _observe(self, outcome: BatchOutcome, size: int, seconds: float) -> None:
        m = self.metrics
        for event_type, n in outcome.changes.applied.items():
            m.events_applied.labels(event_type).inc(n)
        if outcome.duplicates:
            m.duplicates.labels("event_id").inc(outcome.duplicates)
        if outcome.already_done:
            m.duplicates.labels("redelivery").inc(outcome.already_done)
        if outcome.changes.deferred:
            m.waiting_events.labels("deferred").inc(outcome.changes.deferred)
        if outcome.changes.resumed:
            m.waiting_events.labels("resumed").inc(outcome.changes.resumed)
        m.batch_size.observe(size)
        m.batch_seconds.observe(seconds)
        m.checkpoint.set(outcome.checkpoint)

    async def _retry(self, stage: str, attempt: Callable[[], Awaitable[T]]) -> T:
        next_delay = self.backoff.delays()
        while True:
            try:
                return await attempt()
            except (asyncio.CancelledError, Fenced):
                raise
            except Exception as exc:
                # Everything is retried, not only connection errors: an unknown failure must stop
                # the line and be seen (retries metric, log), never drop an event.
                self.metrics.retries.labels(stage).inc()
                delay = next_delay()
                log.warning("%s failed (%s: %s); retrying in %.2fs", stage, type(exc).__name__,
                            exc, delay)  # fmt: skip
                if self.stopping.is_set():
                    raise
                await asyncio.sleep(delay)
