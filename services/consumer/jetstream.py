"""Reading a stream and writing dead letters: every NATS call of a consumer.

The source keeps pull requests outstanding so that messages stream into a buffer while the
previous batch is being committed (the pattern of nats.go's ``Consume``), instead of nats-py's
``fetch``, which waits for each message separately. The consumer acknowledges with ``AckAll``:
one ack after a committed batch covers the whole batch, so the source must never hand out a
batch with a hole in it. Three rules keep it that way:
- pull requests are bounded in bytes as well as in messages, so the server never has more for
  this client in flight than ``pull_bytes`` (well under its slow-consumer limit, 64 MiB);
- every delivery carries the consumer's delivery sequence, which counts each delivery: a jump
  means a delivery was lost in transit, and the source stops at the message before it;
- after a lost delivery, a reconnect, a deleted consumer or a new writer, the consumer is
  recreated at the checkpoint the database holds (``restart``), on a fresh inbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Generic, TypeVar

import orjson
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, ReplayPolicy
from nats.js.errors import NotFoundError

from contracts.wire import DEAD_LETTERS_SUBJECTS, dead_letter_stage
from services.common.deadletters import TRUNCATED, dead_letter_headers
from services.common.streams import DEAD_LETTERS_STREAM, EVENTS_STREAM, dead_letter_subject
from services.consumer.model import Delivery, StreamPlace, message_id_of

log = logging.getLogger(__name__)

STATUS = "Status"
DESCRIPTION = "Description"
T = TypeVar("T")
_PULL_EXPIRES_S = 5.0
PULL_BYTES = 16 * 1024 * 1024
"""Default bound on bytes requested and not yet taken: a quarter of nats-server's default
``max_pending`` (64 MiB), the point where it cuts a client off as a slow consumer."""
_MIN_REQUEST_BYTES = 4 * 1024 * 1024
"""A pull request has room for the largest message (1 MiB: a smaller one would stall), and
requests are few enough not to cost much."""
_HEADER_FRAME = len("NATS/1.0\r\n\r\n")
_REQUEST_BATCH = 1_000_000
"""Pull requests are limited by bytes, not by count (see ``_request_more``)."""


def ack_meta(reply: str) -> tuple[int, int]:
    """Stream and consumer (delivery) sequences from a JetStream ack subject (v1 and v2)."""
    tokens = reply.split(".")
    # $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>         (9 tokens)
    # $JS.ACK.<domain>.<hash>.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>.<r>
    if len(tokens) == 9:
        return int(tokens[5]), int(tokens[6])
    return int(tokens[7]), int(tokens[8])


def stream_seq(reply: str) -> int:
    """The stream sequence from a JetStream ack subject."""
    return ack_meta(reply)[0]


class NatsConnection:
    """The projector's NATS connection; opened anew if the client closed for good.

    nats-py reconnects by itself after a network fault, but a connection the server closed on a
    protocol error (a message over ``max_payload``) stays closed: ``current`` then opens another.
    """

    def __init__(self, client: Client, reopen: Callable[[], Awaitable[Client]] | None = None):
        self.client = client
        self._reopen = reopen
        self.opened = 1

    async def current(self) -> Client:
        if self.client.is_closed and self._reopen is not None:
            log.error("the NATS connection was closed; opening a new one")
            self.client = await self._reopen()
            self.opened += 1
        return self.client

    async def close_reopened(self) -> None:
        """Close a client this object opened (the first one belongs to whoever passed it)."""
        if self.opened > 1 and not self.client.is_closed:
            await self.client.drain()

    def marker(self) -> tuple[int, int]:
        """Changes whenever the connection was reopened or has reconnected."""
        return (self.opened, int(self.client.stats.get("reconnects", 0)))


class ConsumerBroken(Exception):
    """Why the current consumer binding cannot be trusted any more (the reason is a label)."""


class EventSource(Generic[T]):
    """A pull consumer on ``CW_EVENTS`` that hands out batches in stream order, without holes.

    Each message is turned into ``prepare(delivery)`` as it arrives (decoding and validation),
    which runs while the previous batch is being committed instead of after it.
    """

    def __init__(
        self,
        conn: Client | NatsConnection,
        durable: str | None,
        prepare: Callable[[Delivery], T],
        *,
        batch: int,
        linger_s: float = 0.005,
        ack_wait_s: float = 60.0,
        stream: str = EVENTS_STREAM,
        pull_bytes: int = PULL_BYTES,
        subjects: str = "",
    ) -> None:
        self._conn = conn if isinstance(conn, NatsConnection) else NatsConnection(conn)
        self._js: JetStreamContext = self._conn.client.jetstream()
        self._durable = durable
        self._prepare = prepare
        self._stream = stream
        self._batch = batch
        self._linger_s = linger_s
        self._ack_wait_s = ack_wait_s
        self._pull_bytes = pull_bytes
        self._subjects = subjects
        """A subject filter: one partition of the stream (empty: all of it)."""
        self._min_request_bytes = min(_MIN_REQUEST_BYTES, pull_bytes)
        self._ready = asyncio.Event()
        self._sub: Subscription | None = None
        self._consumer: str | None = None
        self._session = 0
        self._marker = self._conn.marker()
        self._inbox = ""
        self._next_subject = ""
        self.broken: str | None = None
        """Why the consumer binding cannot be trusted (``gap``, ``reconnect``, ...), if so."""
        self._clear()

    def _clear(self) -> None:
        self._buffer: list[T] = []
        self._msgs: list[Msg] = []  # in step with _buffer: what to acknowledge
        self._sizes: list[int] = []
        self._buffer_bytes = 0
        self._last_taken: Msg | None = None
        self._outstanding_bytes = 0
        self._last_request = 0.0
        self._expected_delivery = 1

    @property
    def consumer(self) -> str:
        assert self._consumer is not None
        return self._consumer

    async def start(self, after_seq: int) -> None:
        """Create the consumer so that it delivers everything after ``after_seq``.

        The database checkpoint is the truth, so the durable consumer is always recreated at
        it: whatever the server remembers (an ack floor ahead of a restored database, messages
        a killed process never acknowledged, deliveries lost in transit) cannot skip anything.
        Only the single writer (see ``SingleWriter``) calls this, so nobody else is reading.
        """
        await self.restart(after_seq)

    async def restart(self, after_seq: int) -> None:
        """Drop the current binding and what it buffered; deliver again after ``after_seq``."""
        await self._unsubscribe()
        nc = await self._conn.current()
        self._js = nc.jetstream()
        config = self._config(after_seq)
        if self._durable is None:
            if self._consumer is not None:
                await self._delete_consumer(self._consumer)
            info = await self._js.add_consumer(self._stream, config)
            self._consumer = info.name
        else:
            self._consumer = self._durable
            await self._delete_consumer(self._durable)
            await self._js.add_consumer(self._stream, config)
        self._clear()
        self._session += 1
        self._inbox = nc.new_inbox()
        session = self._session

        async def on_message(msg: Msg) -> None:
            self._on_message(session, msg)

        self._sub = await nc.subscribe(
            self._inbox, cb=on_message, pending_msgs_limit=-1, pending_bytes_limit=-1
        )
        self._next_subject = f"$JS.API.CONSUMER.MSG.NEXT.{self._stream}.{self._consumer}"
        self._marker = self._conn.marker()
        self.broken = None

    async def _delete_consumer(self, name: str) -> None:
        with contextlib.suppress(NotFoundError):
            await self._js.delete_consumer(self._stream, name)

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
            "filter_subject": self._subjects or None,
        }
        if after_seq > 0:
            return ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=after_seq + 1,
                **common,  # type: ignore[arg-type]
            )
        return ConsumerConfig(deliver_policy=DeliverPolicy.ALL, **common)  # type: ignore[arg-type]

    def invalidate(self, reason: str, detail: str = "") -> None:
        """Stop taking deliveries: the binding must be restarted at the checkpoint."""
        if self.broken is None:
            self.broken = reason
            log.error("consumer %s: %s%s", self._consumer, reason, f": {detail}" if detail else "")
        self._ready.set()

    def needs_restart(self) -> str | None:
        """The reason to restart, once everything taken before the fault has been handed out."""
        if self.broken is None and self._sub is not None:
            if self._conn.client.is_closed:
                self.invalidate("connection_closed", "the NATS connection closed")
            elif self._conn.marker() != self._marker:
                self.invalidate("reconnect", "deliveries in flight may have been lost")
        return self.broken if not self._buffer else None

    def _on_message(self, session: int, msg: Msg) -> None:
        if session != self._session or self.broken is not None:
            return  # a binding that was dropped: these come again from the checkpoint
        if not msg.reply.startswith("$JS.ACK."):
            # The server's own status messages come on the inbox with no ack subject; a
            # publisher's message with a ``Status`` header is an event (or a dead letter).
            if msg.subject == self._inbox and msg.headers and STATUS in msg.headers:
                self._on_status(msg.headers)
            return
        reply = msg.reply
        tokens = reply.split(".")  # ack_meta, inlined: this runs for every message
        at = 5 if len(tokens) == 9 else 7
        seq, delivered = int(tokens[at]), int(tokens[at + 1])
        if delivered != self._expected_delivery:
            self.invalidate(
                "gap",
                f"delivery {self._expected_delivery} never arrived (next came {delivered}, "
                f"stream sequence {seq})",
            )
            return
        self._expected_delivery = delivered + 1
        headers = msg.headers
        data = msg.data
        subject = msg.subject
        # What the server counts against a pull request's max_bytes: subject, ack reply, raw
        # headers and body.
        size = len(data) + len(subject) + len(reply)
        if headers:
            size += (
                _HEADER_FRAME
                + 4 * len(headers)
                + sum(map(len, headers))
                + sum(map(len, headers.values()))
            )
        self._outstanding_bytes -= size
        delivery = Delivery(seq, subject, data, headers)
        self._buffer.append(self._prepare(delivery))
        self._msgs.append(msg)
        self._sizes.append(size)
        self._buffer_bytes += size
        if len(self._buffer) == 1 or len(self._buffer) >= self._batch:
            self._ready.set()

    def _on_status(self, headers: Mapping[str, str]) -> None:
        status = headers[STATUS]
        description = headers.get(DESCRIPTION, "")
        if status == "503" or "Consumer Deleted" in description:
            self.invalidate("consumer_missing", f"{status} {description}".strip())
            return
        if status in ("408", "409"):
            # A pull request ended (expired, or cut short by its byte limit): the server says
            # how many of its bytes it will no longer deliver.
            left_bytes = headers.get("Nats-Pending-Bytes")
            if left_bytes is not None and left_bytes.isdigit():
                self._outstanding_bytes = max(0, self._outstanding_bytes - int(left_bytes))
        self._ready.set()

    async def _request_more(self) -> None:
        # Keep up to pull_bytes requested or buffered and not yet taken, so the server streams
        # while we commit and never holds more for us than that. Requests are limited in bytes
        # only: each then ends by its byte limit or its expiry, both of which the server
        # reports with what was left, so the count of bytes in flight stays exact.
        if self._sub is None or self.broken is not None:
            return
        now = time.monotonic()
        if now - self._last_request > _PULL_EXPIRES_S + 1:
            self._outstanding_bytes = 0  # every request has expired by now
        if len(self._buffer) >= 2 * self._batch:
            return
        room = self._pull_bytes - self._buffer_bytes - self._outstanding_bytes
        if room >= self._min_request_bytes:
            request = {
                "batch": _REQUEST_BATCH,
                "max_bytes": room,
                "expires": int(_PULL_EXPIRES_S * 1e9),
            }
            await self._conn.client.publish(
                self._next_subject, orjson.dumps(request), reply=self._inbox
            )
            self._outstanding_bytes += room
            self._last_request = now

    async def next_batch(self, wait_s: float) -> list[T]:
        """Up to ``batch`` prepared messages in stream order; ``[]`` if none came in ``wait_s``.

        Under load the buffer refills while the previous batch commits, so batches are full;
        when events trickle in, a batch waits at most ``linger_s`` for company (latency).
        """
        await self._request_more()
        if not self._buffer:
            if self.broken is not None:
                return []
            self._ready.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), wait_s)
            if not self._buffer:
                return []
        if len(self._buffer) < self._batch and self._linger_s > 0 and self.broken is None:
            self._ready.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), self._linger_s)
        n = min(len(self._buffer), self._batch)
        taken, self._buffer = self._buffer[:n], self._buffer[n:]
        self._last_taken = self._msgs[n - 1]
        self._msgs = self._msgs[n:]
        self._buffer_bytes -= sum(self._sizes[:n])
        self._sizes = self._sizes[n:]
        await self._request_more()
        return taken

    async def ack_taken(self) -> None:
        """With ``AckAll``, acknowledging the last message taken acknowledges the whole batch."""
        if self._last_taken is not None:
            await self._last_taken.ack()

    async def _unsubscribe(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):  # a closed connection has no subscription left
                await self._sub.unsubscribe()
            self._sub = None

    async def stop(self) -> None:
        await self._unsubscribe()
        if self._durable is None and self._consumer is not None:
            try:
                await self._js.delete_consumer(self._stream, self._consumer)
            except Exception:  # the server drops an inactive ephemeral consumer anyway
                log.debug("ephemeral consumer %s not deleted", self._consumer, exc_info=True)
        await self._conn.close_reopened()

    async def oldest_waiting(self, after_seq: int) -> datetime | None:
        """When the first message after ``after_seq`` (within the filter) reached the stream;
        ``None`` when there is none."""
        try:
            msg = await self._js.get_msg(
                self._stream, seq=after_seq + 1, next=True, subject=self._subjects or None
            )
        except NotFoundError:
            return None
        return msg.time

    async def place(self, seq: int) -> StreamPlace:
        """The stream as it is now around ``seq`` (see ``stream_place``)."""
        nc = await self._conn.current()
        return await stream_place(nc.jetstream(), self._stream, seq)

    @property
    def stream(self) -> str:
        return self._stream

    async def pending(self) -> int:
        """Events in the stream not yet delivered to this consumer (the projector's lag)."""
        if self._consumer is None:
            raise ConsumerBroken("no consumer: the source has not started")
        try:
            info = await self._js.consumer_info(self._stream, self.consumer)
        except NotFoundError:
            self.invalidate("consumer_missing", "the consumer was deleted")
            raise
        return int(info.num_pending or 0) + int(info.num_ack_pending or 0)


async def stream_place(js: JetStreamContext, stream: str, seq: int) -> StreamPlace:
    """The stream's bounds and the id of its message at ``seq`` (``identity.stream_replaced``
    decides whether it is the stream a checkpoint at ``seq`` was taken from)."""
    info = await js.stream_info(stream)
    first, last = int(info.state.first_seq), int(info.state.last_seq)
    message_id: str | None = None
    if seq > 0 and first <= seq <= last:
        try:
            msg = await js.get_msg(stream, seq=seq)
        except NotFoundError:  # deleted at that sequence: nothing to compare
            pass
        else:
            message_id = message_id_of(msg.data or b"")
    return StreamPlace(stream, first, last, message_id)


async def stream_last_seq(js: JetStreamContext, stream: str = EVENTS_STREAM) -> int:
    info = await js.stream_info(stream)
    return int(info.state.last_seq)


def _headers_size(headers: Mapping[str, str]) -> int:
    return len("NATS/1.0\r\n\r\n") + sum(len(k) + len(v) + 4 for k, v in headers.items())


class DeadLetterPublisher:
    """Sends rejected messages to ``cw.dlq.<stage>`` and waits until JetStream has them.

    A dead letter always fits under the server's ``max_payload``: when the original body and
    the dead-letter headers together are too large, the body is cut and ``Cw-Dlq-Truncated``
    gives the original size (the whole message stays in ``CW_EVENTS`` at its sequence).
    """

    def __init__(
        self,
        conn: Client | NatsConnection,
        stage: str,
        key: Callable[[], Awaitable[bytes]],
    ) -> None:
        """``key``: the deployment's dead-letter key (``services.consumer.letter_key``), which
        seals each letter's ``Nats-Msg-Id`` so that no district can write it first."""
        self._conn = conn if isinstance(conn, NatsConnection) else NatsConnection(conn)
        self._stage = stage
        self._subject = dead_letter_subject(stage)
        self._key = key

    async def publish(
        self,
        delivery: Delivery,
        reason: str,
        field: str,
        kind: str,
        extra: Mapping[str, str] | None = None,
    ) -> None:
        key = await self._key()
        nc = await self._conn.current()
        body = delivery.data
        original = delivery.headers
        headers = self._headers(delivery, reason, field, kind, extra, key=key, original=original)
        limit = nc.max_payload - len(self._subject) - 64
        if _headers_size(headers) > limit // 2:
            # A publisher's oversized headers are not worth losing the dead letter for.
            headers = self._headers(delivery, reason, field, kind, extra, key=key, original=None)
        if len(body) + _headers_size(headers) > limit:
            headers[TRUNCATED] = str(len(body))
            body = body[: max(0, limit - _headers_size(headers))]
        await nc.jetstream().publish(
            self._subject, body, headers=headers, stream=DEAD_LETTERS_STREAM
        )

    def _headers(
        self,
        delivery: Delivery,
        reason: str,
        field: str,
        kind: str,
        extra: Mapping[str, str] | None,
        *,
        key: bytes,
        original: Mapping[str, str] | None,
    ) -> dict[str, str]:
        return dead_letter_headers(
            stage=self._stage,
            reason=reason,
            field=field,
            payload=delivery.data,
            original_headers=original,
            subject=delivery.subject,
            stream_seq=delivery.seq,
            kind=kind,
            extra=extra,
            key=key,
        )


async def dead_letters_per_stage(js: JetStreamContext) -> dict[str, int]:
    """Dead letters kept in CW_DEAD_LETTERS by stage: the token after ``cw.dlq.`` (the intake's
    of every district together)."""
    info = await js.stream_info(DEAD_LETTERS_STREAM, subjects_filter=DEAD_LETTERS_SUBJECTS)
    counts: dict[str, int] = {}
    for subject, count in (info.state.subjects or {}).items():
        stage = dead_letter_stage(subject)
        counts[stage] = counts.get(stage, 0) + int(count)
    return counts
