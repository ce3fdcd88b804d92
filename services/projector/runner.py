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
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from functools import partial
from typing import TypeVar

from contracts import EventRejected, decode_event
from services.common.campaign import Campaign
from services.common.deadletters import ISSUE_VENUE
from services.common.retry import FOREVER, RetryPolicy, retry
from services.projector.domain.model import (
    BatchOutcome,
    Changes,
    Delivery,
    Outcome,
    Prepared,
    Refusal,
    Rejection,
    StreamEvent,
)
from services.projector.domain.ports import (
    DeadLetters,
    Fenced,
    Observer,
    ReadModelStore,
    Source,
    Unstorable,
    Writer,
)
from services.projector.service import apply_batch

log = logging.getLogger("cw.projector")
T = TypeVar("T")


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
    return StreamEvent(d.seq, event, d.data, d.subject, phase, d.headers)


class Projector:
    def __init__(
        self,
        source: Source,
        store: ReadModelStore,
        campaign: Campaign,
        metrics: Observer,
        *,
        dead_letters: DeadLetters | None,
        writer: Writer | None = None,
        fetch_wait: timedelta = timedelta(seconds=1),
        retry_policy: RetryPolicy = FOREVER,
    ) -> None:
        self.source = source
        self.store = store
        self.campaign = campaign
        self.metrics = metrics
        self.dead_letters = dead_letters
        self.writer = writer
        self.fetch_wait_s = fetch_wait.total_seconds()
        self.retry_policy = retry_policy
        self.stopping = asyncio.Event()

    async def checkpoint(self) -> int:
        return await self._retry("database", self.store.checkpoint)

    async def run(self) -> None:
        await self._retry("nats", self._start)
        try:
            while not self.stopping.is_set():
                reason = self.source.needs_restart()
                if reason is not None:
                    await self._restart(reason)
                    continue
                batch = await self.source.next_batch(self.fetch_wait_s)
                if not batch:
                    continue
                if self.writer is not None and await self._retry("database", self.writer.ensure):
                    # Whoever becomes the writer starts from the checkpoint: another projector
                    # may have written, and left messages unacknowledged, in between.
                    self.source.invalidate("writer_regained", "the write lock was taken again")
                    continue
                await self.handle(batch)
        finally:
            await self.source.stop()

    async def _start(self) -> None:
        await self.source.start(await self.checkpoint())

    async def _restart(self, reason: str) -> None:
        self.metrics.consumer_restarted(reason)
        checkpoint = await self.checkpoint()
        log.warning("restarting the consumer at the checkpoint %s (%s)", checkpoint, reason)
        await self._retry("nats", lambda: self.source.restart(checkpoint))

    async def handle(self, batch: Sequence[Prepared]) -> BatchOutcome:
        started = time.perf_counter()
        for r in batch:
            if type(r) is Rejection:
                await self._dead_letter(r.delivery, r.reason, r.field, r.kind)
        outcome = await self._commit(batch)
        try:
            await self.source.ack_taken()
        except Exception as exc:  # the batch is committed: a redelivery will change nothing
            log.warning("ack after commit failed (%s); the batch will be redelivered", exc)
        self.metrics.batch_done(outcome, len(batch), time.perf_counter() - started)
        return outcome

    async def _commit(self, batch: Sequence[Prepared]) -> BatchOutcome:
        """Commit ``batch`` in one unit; if the store cannot hold it, find the event that it
        cannot hold by halving the batch (in order), and make that event a dead letter."""
        events = [p for p in batch if type(p) is StreamEvent]
        outcomes = [
            Outcome(p.seq, "dead_lettered", None, p.kind) for p in batch if type(p) is Rejection
        ]
        window = self.campaign.rebound_window
        try:
            return await self._retry(
                "database",
                lambda: apply_batch(
                    self.store, events, batch[-1].seq, window, outcomes=outcomes,
                    refuse=self._refuse,
                ),
            )  # fmt: skip
        except Unstorable as exc:
            if len(batch) > 1:
                half = len(batch) // 2
                return _merge(await self._commit(batch[:half]), await self._commit(batch[half:]))
            (only,) = batch
            if type(only) is not StreamEvent:
                raise
            log.error("event at sequence %s cannot be stored: %s", only.seq, exc)
            delivery = Delivery(only.seq, only.subject, only.raw, only.headers)
            await self._dead_letter(delivery, f"the read model cannot store it: {exc}",
                                    "(event)", "unstorable")  # fmt: skip
            unstorable = [Outcome(only.seq, "dead_lettered", only.event.event_id, "unstorable")]
            return await self._retry(
                "database",
                lambda: apply_batch(self.store, [], only.seq, window, outcomes=unstorable),
            )

    async def _refuse(self, refusal: Refusal) -> None:
        se = refusal.event
        extra = {ISSUE_VENUE: refusal.issue_venue} if refusal.issue_venue else None
        delivery = Delivery(se.seq, se.subject, se.raw, se.headers)
        await self._dead_letter(delivery, refusal.reason, refusal.field, refusal.kind, extra)

    async def _dead_letter(
        self,
        delivery: Delivery,
        reason: str,
        field: str,
        kind: str,
        extra: Mapping[str, str] | None = None,
    ) -> None:
        # Rejected messages were dead-lettered when they first arrived: a rebuild (no
        # publisher) only records them.
        if self.dead_letters is None:
            return
        letters = self.dead_letters
        await self._retry("dead_letters", partial(letters.publish, delivery, reason, field, kind,
                                                  extra))  # fmt: skip
        log.warning("dead letter seq=%s (%s): %s: %s", delivery.seq, kind, field, reason)
        self.metrics.dead_lettered(kind)

    async def _retry(self, stage: str, attempt: Callable[[], Awaitable[T]]) -> T:
        # Everything but a takeover or data the store cannot hold is retried, not only connection
        # errors: an unknown failure must stop the line and be seen, never drop an event.
        return await retry(
            stage,
            attempt,
            policy=self.retry_policy,
            never=(Fenced, Unstorable),
            on_retry=lambda _exc, _pause: self.metrics.retried(stage),
            give_up=self.stopping.is_set,
        )


def _merge(a: BatchOutcome, b: BatchOutcome) -> BatchOutcome:
    changes = Changes()
    for part in (a.changes, b.changes):
        for event_type, n in part.applied.items():
            changes.applied[event_type] = changes.applied.get(event_type, 0) + n
        changes.deferred += part.deferred
        changes.resumed += part.resumed
    return BatchOutcome(
        applied=a.applied + b.applied,
        duplicates=a.duplicates + b.duplicates,
        already_done=a.already_done + b.already_done,
        checkpoint=max(a.checkpoint, b.checkpoint),
        changes=changes,
        refused=a.refused + b.refused,
    )
