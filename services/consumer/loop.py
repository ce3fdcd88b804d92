"""The loop every consumer of a stream runs: take a batch, dead-letter what is not an event,
commit, then ack.

Order of effects, and why it is safe to crash anywhere:
1. rejected messages are stored in ``CW_DEAD_LETTERS`` (deduplicated by their stream sequence);
2. the batch's effects and the checkpoint commit in one transaction (``Consumer.apply``);
3. the last message is acknowledged (``AckAll`` covers the batch).
A crash before 3 redelivers the batch; the checkpoint makes it change nothing. A fault in 1 or 2
(the database down, a timeout, NATS gone) retries the same batch with backoff, forever: nothing
is acknowledged or terminated because a server was away. Data the store cannot hold is found by
halving the batch and becomes a dead letter (``unstorable``); a lost delivery, a reconnect, a
deleted consumer or a regained write lock restarts the source at the stored checkpoint.

Before it reads, at start and at every restart (a reconnect among them), the loop checks that
the stream holds, at the checkpoint's sequence, the message the checkpoint recorded
(``services.consumer.identity``): another stream of the same name stalls the consumer, which
takes nothing from it, says why, and looks again every 30 s.

A new consumer subclasses ``Consumer``: ``tracked``, ``apply`` and ``merge``, and
wires a ``services.consumer.jetstream.EventSource``, ``DeadLetterPublisher`` and
``services.consumer.lease.SingleWriter`` with its own durable name. A consumer of another
message family than events (the notifier: reminders) names what it applies,
``Consumer[Report, StreamReminder]``: anything with a sequence, subject, bytes and id.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from functools import partial
from typing import Generic, TypeVar

from typing_extensions import TypeVar as DefaultTypeVar

from services.common.retry import FOREVER, RetryPolicy, retry
from services.consumer.health import Health
from services.consumer.identity import RECHECK_S, remedy, stream_replaced
from services.consumer.model import (
    Delivery,
    Outcome,
    Rejection,
    StreamEvent,
    StreamMessage,
    Tracked,
    message_id_of,
)
from services.consumer.ports import DeadLetters, Fenced, Observer, Source, Unstorable, Writer

log = logging.getLogger("cw.consumer")
T = TypeVar("T")
Report = TypeVar("Report")
"""What a committed batch reports (the projector: ``BatchOutcome``)."""
M = DefaultTypeVar("M", bound=StreamMessage, default=StreamEvent)
"""What a batch applies: events of ``CW_EVENTS``, or the messages of another family."""


class Consumer(abc.ABC, Generic[Report, M]):
    """The loop every consumer of a stream runs; a subclass says how a batch is applied."""

    name: str = "consumer"
    """Who this consumer is, in what it says (``projector``, ``reminders``, ``notifier``)."""

    def __init__(
        self,
        source: Source[M | Rejection],
        metrics: Observer[Report],
        *,
        dead_letters: DeadLetters | None,
        writer: Writer | None = None,
        fetch_wait: timedelta = timedelta(seconds=1),
        retry_policy: RetryPolicy = FOREVER,
    ) -> None:
        self.source = source
        self.metrics = metrics
        self.dead_letters = dead_letters
        self.writer = writer
        self.fetch_wait_s = fetch_wait.total_seconds()
        self.retry_policy = retry_policy
        self.stopping = asyncio.Event()
        self.health: Health | None = None
        """What ``/healthz`` reports; the loop tells it each checkpoint it commits."""
        self.recheck_s = RECHECK_S
        self.replaced: str | None = None
        """Why the stream is not the one this consumer followed, while it is not."""

    @abc.abstractmethod
    async def tracked(self) -> Tracked:
        """The last sequence whose effects are committed and the id of its message, from the
        consumer's own store."""

    @abc.abstractmethod
    async def apply(
        self, events: Sequence[M], through: Tracked, outcomes: Sequence[Outcome]
    ) -> Report:
        """Apply ``events``, record ``outcomes`` and move the checkpoint to ``through`` (its
        sequence and message id) in one transaction. Raise ``Unstorable`` when the store cannot
        hold the data."""

    @abc.abstractmethod
    def merge(self, first: Report, second: Report) -> Report:
        """What two committed halves of a batch report together."""

    async def checkpoint(self) -> int:
        return (await self._retry("database", self.tracked)).seq

    async def run(self) -> None:
        if not await self._retry("nats", self._start):
            return  # stopped while the stream was another one
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
                    # Whoever becomes the writer starts from the checkpoint: another process
                    # may have written, and left messages unacknowledged, in between. Restart
                    # now, not once the buffer is handed out: the batch in hand is dropped, and
                    # a later one committed before the restart would skip it for good.
                    await self._restart("writer_regained")
                    continue
                await self.handle(batch)
        finally:
            await self.source.stop()

    async def _start(self) -> bool:
        checkpoint = await self._same_stream()
        if checkpoint is None:
            return False
        await self.source.start(checkpoint)
        if self.health is not None:
            self.health.progressed(checkpoint)
        return True

    async def _restart(self, reason: str) -> None:
        self.metrics.consumer_restarted(reason)
        checkpoint = await self._same_stream()
        if checkpoint is None:
            return
        if self.health is not None:
            self.health.progressed(checkpoint)
        log.warning("restarting the consumer at the checkpoint %s (%s)", checkpoint, reason)
        await self._retry("nats", lambda: self.source.restart(checkpoint))

    async def _same_stream(self) -> int | None:
        """The checkpoint, once the stream holds the message it recorded; until then the
        consumer takes nothing and looks again every ``recheck_s``. ``None`` if stopped."""
        while not self.stopping.is_set():
            tracked = await self._retry("database", self.tracked)
            place = await self._retry("nats", partial(self.source.place, tracked.seq))
            problem = stream_replaced(self.name, tracked, place)
            if problem is None:
                if self.replaced is not None:
                    log.warning("%s is the stream the %s followed again: resuming at %s",
                                place.stream, self.name, tracked.seq)  # fmt: skip
                self._set_replaced(None)
                return tracked.seq
            if problem != self.replaced:
                log.error("%s; %s", problem, remedy(self.name, place.stream))
            self._set_replaced(problem)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), self.recheck_s)
        return None

    def _set_replaced(self, problem: str | None) -> None:
        self.replaced = problem
        if self.health is not None:
            self.health.replaced = problem

    async def handle(self, batch: Sequence[M | Rejection]) -> Report:
        started = time.perf_counter()
        for r in batch:
            if type(r) is Rejection:
                await self.dead_letter(r.delivery, r.reason, r.field, r.kind)
        outcome = await self._commit(batch)
        if self.health is not None:
            self.health.progressed(batch[-1].seq)
        try:
            await self.source.ack_taken()
        except Exception as exc:  # the batch is committed: a redelivery will change nothing
            log.warning("ack after commit failed (%s); the batch will be redelivered", exc)
        self.metrics.batch_done(outcome, len(batch), time.perf_counter() - started)
        return outcome

    async def _commit(self, batch: Sequence[M | Rejection]) -> Report:
        """Commit ``batch`` in one unit; if the store cannot hold it, find the event that it
        cannot hold by halving the batch (in order), and make that event a dead letter."""
        events = [p for p in batch if not isinstance(p, Rejection)]
        outcomes = [
            Outcome(p.seq, "dead_lettered", None, p.kind) for p in batch if type(p) is Rejection
        ]
        through = _tracked(batch[-1])
        try:
            return await self._retry("database", lambda: self.apply(events, through, outcomes))
        except Unstorable as exc:
            if len(batch) > 1:
                half = len(batch) // 2
                return self.merge(
                    await self._commit(batch[:half]), await self._commit(batch[half:])
                )
            (only,) = batch
            if isinstance(only, Rejection):
                raise
            # PostgreSQL's message may quote the value: the dead letter keeps it, the log not.
            log.error("event at sequence %s cannot be stored: a dead letter says why", only.seq)
            delivery = Delivery(only.seq, only.subject, only.raw, only.headers)
            await self.dead_letter(delivery, f"the read model cannot store it: {exc}",
                                    "(event)", "unstorable")  # fmt: skip
            unstorable = [Outcome(only.seq, "dead_lettered", only.message_id, "unstorable")]
            return await self._retry("database", lambda: self.apply([], _tracked(only), unstorable))

    async def dead_letter(
        self,
        delivery: Delivery,
        reason: str,
        field: str,
        kind: str,
        extra: Mapping[str, str] | None = None,
    ) -> None:
        # A replay of messages dead-lettered when they first arrived (a rebuild) has no
        # publisher: it only records them.
        if self.dead_letters is None:
            return
        letters = self.dead_letters
        await self._retry("dead_letters", partial(letters.publish, delivery, reason, field, kind,
                                                  extra))  # fmt: skip
        # The reason may quote the message (a malformed phone number): it stays in the dead
        # letter, for the operator (`cw dlq show`), and out of the log.
        log.warning(
            "dead letter seq=%s (%s), field %s: cw dlq shows why", delivery.seq, kind, field
        )
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


def _tracked(message: StreamMessage | Rejection) -> Tracked:
    """The checkpoint a batch ending with ``message`` commits: its sequence and id."""
    data = message.delivery.data if isinstance(message, Rejection) else message.raw
    return Tracked(message.seq, message_id_of(data))
