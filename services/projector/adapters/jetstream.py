"""Reading ``CW_EVENTS`` and writing dead letters: every NATS call of the projector.

The source keeps pull requests outstanding so that messages stream into a buffer while the
previous batch is being committed (the pattern of nats.go's ``Consume``), instead of nats-py's
``fetch``, which waits for each message separately. The consumer acknowledges with ``AckAll``:
one ack after a committed batch covers the whole batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

import orjson
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, ReplayPolicy
from nats.js.errors import NotFoundError

from services.common.deadletters import dead_letter_headers
from services.common.streams import DEAD_LETTERS_STREAM, EVENTS_STREAM, dead_letter_subject

log = logging.getLogger(__name__)

STATUS = "Status"
T = TypeVar("T")
_PULL_EXPIRES_S = 5.0


@dataclass(slots=True)
class Delivery:
    """One message as JetStream delivered it (not ``frozen``: see ``StreamEvent``)."""

    seq: int
    subject: str
    data: bytes
    headers: Mapping[str, str] | None


def stream_seq(reply: str) -> int:
    """The stream sequence from a JetStream ack subject (v1 and v2 token layouts)."""
    tokens = reply.split(".")
    # $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>         (9 tokens)
    # $JS.ACK.<domain>.<hash>.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>.<r>
    return int(tokens[5] if len(tokens) == 9 else tokens[7])


class EventSource(Generic[T]):
    """A pull consumer on ``CW_EVENTS`` that hands out batches in stream order.

    Each message is turned into ``prepare(delivery)`` as it arrives (decoding and validation),
    which runs while the previous batch is being committed instead of after it.
    """

    def __init__(
        self,
        nc: Client,
        durable: str | None,
        prepare: Callable[[Delivery], T],
        *,
        batch: int,
        linger_s: float = 0.005,
        ack_wait_s: float = 60.0,
        stream: str = EVENTS_STREAM,
    ) -> None:
        self._nc = nc
        self._js: JetStreamContext = nc.jetstream()
        self._durable = durable
        self._prepare = prepare
        self._stream = stream
        self._batch = batch
        self._linger_s = linger_s
        self._ack_wait_s = ack_wait_s
        self._buffer: list[T] = []
        self._msgs: list[Msg] = []  # in step with _buffer: what to acknowledge
        self._last_taken: Msg | None = None
        self._ready = asyncio.Event()
        self._outstanding = 0
        self._last_request = 0.0
        self._sub: Subscription | None = None
        self._consumer: str | None = None

    @property
    def consumer(self) -> str:
        assert self._consumer is not None
        return self._consumer

    async def start(self, after_seq: int) -> None:
        """Bind (or create) the consumer so that it delivers everything after ``after_seq``.

        The database checkpoint is the truth. The durable consumer is recreated at it when
        - its ack floor is ahead (the database was restored from a backup): nothing is skipped;
        - messages are still out unacknowledged (the previous process was killed): they come
          again now instead of after ``ack_wait``.
        Only the single writer (see ``SingleWriter``) calls this, so nobody else is reading.
        """
        config = self._config(after_seq)
        if self._durable is None:
            info = await self._js.add_consumer(self._stream, config)
            self._consumer = info.name
        else:
            self._consumer = self._durable
            try:
                info = await self._js.consumer_info(self._stream, self._durable)
            except NotFoundError:
                await self._js.add_consumer(self._stream, config)
            else:
                floor = int(info.ack_floor.stream_seq or 0) if info.ack_floor else 0
                in_flight = int(info.num_ack_pending or 0)
                if floor > after_seq or in_flight:
                    log.warning(
                        "consumer %s: acked through %s, %s unacknowledged; the read model holds "
                        "%s: recreating it there",
                        self._durable,
                        floor,
                        in_flight,
                        after_seq,
                    )
                    await self._js.delete_consumer(self._stream, self._durable)
                    await self._js.add_consumer(self._stream, config)
        self._inbox = self._nc.new_inbox()
        self._sub = await self._nc.subscribe(
            self._inbox, cb=self._on_message, pending_msgs_limit=-1, pending_bytes_limit=-1
        )
        self._next_subject = f"$JS.API.CONSUMER.MSG.NEXT.{self._stream}.{self._consumer}"

    def _config(self, after_seq: int) -> ConsumerConfig:
        common = {
            "ack_policy": AckPolicy.ALL,
            "ack_wait": self._ack_wait_s,
            "max_deliver": -1,  # never give up on an event: a stuck projector pages someone
            "max_ack_pending": max(20_000, self._batch * 8),
            "max_waiting": 64,
            "replay_policy": ReplayPolicy.INSTANT,
            "durable_name": self._durable,
            "name": self._durable,
            "inactive_threshold": None if self._durable else 300.0,
        }
        if after_seq > 0:
            return ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=after_seq + 1,
                **common,  # type: ignore[arg-type]
            )
        return ConsumerConfig(deliver_policy=DeliverPolicy.ALL, **common)  # type: ignore[arg-type]

    async def _on_message(self, msg: Msg) -> None:
        headers = msg.headers
        if not msg.data and headers and STATUS in headers:
            # 408 (a pull request expired) or 409 (consumer changed): the server tells how many
            # of that request it will no longer deliver.
            left = headers.get("Nats-Pending-Messages")
            if left is not None and left.isdigit():
                self._outstanding = max(0, self._outstanding - int(left))
            elif headers[STATUS] != "100":
                self._outstanding = 0
            self._ready.set()
            return
        self._outstanding -= 1
        self._buffer.append(
            self._prepare(Delivery(stream_seq(msg.reply), msg.subject, msg.data, headers))
        )
        self._msgs.append(msg)
        if len(self._buffer) == 1 or len(self._buffer) >= self._batch:
            self._ready.set()

    async def _request_more(self) -> None:
        # Keep about two batches requested and not yet taken, so the server streams while we
        # commit; expired requests are noticed from the 408 status or, failing that, the clock.
        now = time.monotonic()
        if now - self._last_request > _PULL_EXPIRES_S + 1:
            self._outstanding = 0
        want = 2 * self._batch - len(self._buffer) - self._outstanding
        if want >= self._batch // 2 and want > 0:
            request = {"batch": want, "expires": int(_PULL_EXPIRES_S * 1e9)}
            await self._nc.publish(self._next_subject, orjson.dumps(request), reply=self._inbox)
            self._outstanding += want
            self._last_request = now

    async def next_batch(self, wait_s: float) -> list[T]:
        """Up to ``batch`` prepared messages in stream order; ``[]`` if none came in ``wait_s``.

        Under load the buffer refills while the previous batch commits, so batches are full;
        when events trickle in, a batch waits at most ``linger_s`` for company (latency).
        """
        await self._request_more()
        if not self._buffer:
            self._ready.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), wait_s)
            if not self._buffer:
                return []
        if len(self._buffer) < self._batch and self._linger_s > 0:
            self._ready.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), self._linger_s)
        n = min(len(self._buffer), self._batch)
        taken, self._buffer = self._buffer[:n], self._buffer[n:]
        self._last_taken = self._msgs[n - 1]
        self._msgs = self._msgs[n:]
        await self._request_more()
        return taken

    async def ack_taken(self) -> None:
        """With ``AckAll``, acknowledging the last message taken acknowledges the whole batch."""
        if self._last_taken is not None:
            await self._last_taken.ack()

    async def stop(self) -> None:
        if self._sub is not None:
            await self._sub.unsubscribe()
            self._sub = None
        if self._durable is None and self._consumer is not None:
            try:
                await self._js.delete_consumer(self._stream, self._consumer)
            except Exception:  # the server drops an inactive ephemeral consumer anyway
                log.debug("ephemeral consumer %s not deleted", self._consumer, exc_info=True)

    async def pending(self) -> int:
        """Events in the stream not yet delivered to this consumer (the projector's lag)."""
        info = await self._js.consumer_info(self._stream, self.consumer)
        return int(info.num_pending or 0) + int(info.num_ack_pending or 0)


async def stream_last_seq(js: JetStreamContext, stream: str = EVENTS_STREAM) -> int:
    info = await js.stream_info(stream)
    return int(info.state.last_seq)


class DeadLetterPublisher:
    """Sends rejected messages to ``cw.dlq.<stage>`` and waits until JetStream has them."""

    def __init__(self, js: JetStreamContext, stage: str) -> None:
        self._js = js
        self._stage = stage
        self._subject = dead_letter_subject(stage)

    async def publish(self, delivery: Delivery, reason: str, field: str) -> None:
        headers = dead_letter_headers(
            stage=self._stage,
            reason=reason,
            field=field,
            payload=delivery.data,
            original_headers=delivery.headers,
            subject=delivery.subject,
            stream_seq=delivery.seq,
        )
        await self._js.publish(
            self._subject, delivery.data, headers=headers, stream=DEAD_LETTERS_STREAM
        )
