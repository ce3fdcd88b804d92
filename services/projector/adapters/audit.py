"""What ``cw audit`` reads: every SQL statement and NATS call of the audit.

- PostgreSQL, first: the projector's tracking rows (every partition's checkpoint and the id of
  its message); ``CW_EVENTS`` at each of those checkpoints (``stream_place``), to tell whether it
  is the stream the read model followed.
- ``CW_EVENTS``: the sequence, subject and id (``message_id_of`` the payload) of every message in
  a range, through an ephemeral consumer that acknowledges nothing and is pulled in large
  batches with a byte bound (a few seconds for 200,000 messages; see ``bench/audit_cost.py``).
- ``CW_DEAD_LETTERS``: the original stream sequence of each of the projector's dead letters
  (header ``Cw-Dlq-Stream-Seq``), read the same way, headers only.
- PostgreSQL: the archived sequences of the range with their event ids (two arrays, not a row
  each), the recorded outcomes and the operators' dead-letter actions, in one consistent
  snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar
from uuid import UUID

import orjson
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from services.common.deadletters import STREAM_SEQ
from services.common.streams import DEAD_LETTERS_STREAM, EVENTS_STREAM, dead_letter_subject
from services.consumer.jetstream import stream_place, stream_seq
from services.consumer.model import StreamPlace, Tracked, message_id_of
from services.projector.adapters.generations import PROJECTION, Conn, active_schema, check_schema
from services.projector.domain.audit import (
    DUPLICATE,
    AuditReport,
    OperatorAction,
    Outcome,
    StreamMessage,
    audit,
    audit_window,
    replaced_stream,
)

STAGE = "projector"
T = TypeVar("T")

# With several partitions, the audit covers what every one of them has reached.
READ_CHECKPOINT = "SELECT min(stream_seq) FROM {s}.checkpoint WHERE projection = $1"
TRACKING = (
    "SELECT partition, stream_seq, message_id FROM {s}.checkpoint WHERE projection = $1 "
    "ORDER BY partition"
)
# Both aggregates take the rows of the one scan in the same order: the arrays are aligned.
ARCHIVED = (
    "SELECT COALESCE(array_agg(stream_seq), '{}'), COALESCE(array_agg(event_id::text), '{}') "
    "FROM {s}.event_archive WHERE stream_seq BETWEEN $1 AND $2"
)
OUTCOMES = (
    "SELECT stream_seq, outcome, event_id, reason FROM {s}.stream_outcomes "
    "WHERE stream_seq BETWEEN $1 AND $2 ORDER BY stream_seq"
)
ARCHIVED_EVENT_IDS = "SELECT event_id FROM {s}.event_archive WHERE event_id = ANY($1::uuid[])"
ACTIONS = (
    "SELECT original_stream_seq, action, acted_at, reason FROM cw.dead_letter_actions "
    "WHERE stage = $1 AND original_stream_seq BETWEEN $2 AND $3 ORDER BY acted_at, id"
)

PULL_BATCH = 20_000
PULL_MAX_BYTES = 8 * 1024 * 1024
IDLE_S = 10.0
"""A pull that brings nothing for this long while messages are due is a failure, not the end."""


@dataclass(frozen=True, slots=True)
class ReadModelFacts:
    schema: str
    archived: dict[int, str]
    """The archive's event id (text) at each stream sequence of the range."""
    outcomes: tuple[Outcome, ...]
    archived_event_ids: frozenset[UUID]
    actions: tuple[OperatorAction, ...]


async def read_checkpoint(conn: Conn, projection: str = PROJECTION) -> int:
    schema = await active_schema(conn, projection)
    value = await conn.fetchval(_sql(READ_CHECKPOINT, schema), projection)
    return int(value or 0)


async def read_tracking(conn: Conn, projection: str = PROJECTION) -> list[tuple[str, Tracked]]:
    """Every partition's tracking row: its checkpoint and the id of the message there."""
    schema = await active_schema(conn, projection)
    rows = await conn.fetch(_sql(TRACKING, schema), projection)
    return [(str(r[0]), Tracked(int(r[1]), r[2])) for r in rows]


async def events_stream_places(
    nc: Client, tracking: list[tuple[str, Tracked]]
) -> list[tuple[str, Tracked, StreamPlace]]:
    """``CW_EVENTS`` as it is at each tracking row's checkpoint."""
    js = nc.jetstream()
    try:
        return [(p, t, await stream_place(js, EVENTS_STREAM, t.seq)) for p, t in tracking]
    except NotFoundError:
        raise LookupError(f"stream {EVENTS_STREAM} does not exist: run `cw init` first") from None


async def read_model_facts(
    conn: Conn, first: int, last: int, projection: str = PROJECTION
) -> ReadModelFacts:
    """Archive, outcomes and operator actions for ``first..last``, in one snapshot."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        schema = await active_schema(conn, projection)
        row = await conn.fetchrow(_sql(ARCHIVED, schema), first, last)
        assert row is not None  # an aggregate without GROUP BY answers one row
        seqs, event_ids = row
        outcomes = tuple(
            Outcome(int(r[0]), str(r[1]), r[2], r[3])
            for r in await conn.fetch(_sql(OUTCOMES, schema), first, last)
        )
        targets = list({o.event_id for o in outcomes if o.outcome == DUPLICATE and o.event_id})
        known: frozenset[UUID] = frozenset()
        if targets:
            rows = await conn.fetch(_sql(ARCHIVED_EVENT_IDS, schema), targets)
            known = frozenset(r[0] for r in rows)
        actions = tuple(
            OperatorAction(int(r[0]), str(r[1]), r[2], r[3])
            for r in await conn.fetch(ACTIONS, STAGE, first, last)
        )
    return ReadModelFacts(schema, dict(zip(seqs, event_ids, strict=True)), outcomes, known, actions)


async def audit_read_model(
    nc: Client, conn: Conn, *, since: int = 1, window: int | None = None
) -> AuditReport:
    """Gather the audit's inputs and account for ``since..checkpoint`` (or the last ``window``).

    Read in this order, so that nothing legitimately in flight looks lost: the checkpoint first
    (the tracking rows: everything at or below the lowest is committed, and its dead letters
    were stored before the commit), and whether ``CW_EVENTS`` is the stream they were taken from;
    then the stream and the dead letters; then one snapshot of the read model and the
    operators' actions, which can only have grown since.
    """
    tracking = await read_tracking(conn)
    checkpoint = min((t.seq for _, t in tracking), default=0)
    replaced = replaced_stream(await events_stream_places(nc, tracking))
    first = audit_window(checkpoint, window) if window is not None else max(1, since)
    messages = await stream_messages(nc, first, checkpoint)
    dead_letters = await dead_letter_stream_seqs(nc)
    facts = await read_model_facts(conn, first, checkpoint)
    return audit(
        first_seq=first,
        checkpoint=checkpoint,
        messages=messages,
        archived=facts.archived,
        outcomes=facts.outcomes,
        archived_event_ids=facts.archived_event_ids,
        dead_letter_seqs=dead_letters,
        actions=facts.actions,
        replaced=replaced,
    )


def _sql(template: str, schema: str) -> str:
    return template.replace("{s}", check_schema(schema))


async def stream_messages(
    nc: Client, first: int, last: int, *, stream: str = EVENTS_STREAM
) -> list[StreamMessage]:
    """Sequence, subject and id of every message of ``stream`` in ``first..last`` that
    exists."""
    if last < first:
        return []

    def keep(seq: int, msg: Msg) -> StreamMessage:
        return StreamMessage(seq, msg.subject, message_id_of(msg.data))

    return await _pull_all(nc, stream, first, last, keep=keep, headers_only=False)


async def dead_letter_stream_seqs(nc: Client, stage: str = STAGE) -> set[int]:
    """Original ``CW_EVENTS`` sequences of the stage's dead letters still in the stream."""
    js = nc.jetstream()
    subject = dead_letter_subject(stage)
    try:
        info = await js.stream_info(DEAD_LETTERS_STREAM, subjects_filter=subject)
    except NotFoundError:
        missing = f"stream {DEAD_LETTERS_STREAM} does not exist: run `cw init` first"
        raise LookupError(missing) from None
    if not (info.state.subjects or {}).get(subject):
        return set()

    def original_seq(_: int, msg: Msg) -> int | None:
        value = (msg.headers or {}).get(STREAM_SEQ, "")
        return int(value) if value.isdigit() else None

    last = int(info.state.last_seq)
    found = await _pull_all(
        nc, DEAD_LETTERS_STREAM, 1, last, subject=subject, keep=original_seq, headers_only=True
    )
    return {seq for seq in found if seq is not None}


class _Pull(Generic[T]):
    """An ephemeral consumer without acks (delivering headers only, when that is enough),
    pulled in batches.

    Each message is reduced to ``keep(seq, msg)`` as it arrives: holding 200,000 ``Msg``
    objects would cost far more (memory and garbage collection) than the reading itself.
    """

    def __init__(
        self,
        nc: Client,
        stream: str,
        first: int,
        last: int,
        *,
        subject: str | None,
        keep: Callable[[int, Msg], T],
        headers_only: bool,
    ) -> None:
        self._nc, self._stream, self._keep = nc, stream, keep
        self._headers_only = headers_only
        self._next, self._last, self._subject = first, last, subject
        self._out: list[T] = []
        self._ended = asyncio.Event()
        self._requested = 0
        self._received = 0

    async def run(self) -> list[T]:
        js = self._nc.jetstream()
        config = ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=max(1, self._next),
            ack_policy=AckPolicy.NONE,
            headers_only=self._headers_only,
            filter_subject=self._subject,
            mem_storage=True,
            inactive_threshold=60.0,
        )
        info = await js.add_consumer(self._stream, config)
        inbox = self._nc.new_inbox()
        sub = await self._nc.subscribe(
            inbox, cb=self._on_message, pending_msgs_limit=-1, pending_bytes_limit=-1
        )
        try:
            next_subject = f"$JS.API.CONSUMER.MSG.NEXT.{self._stream}.{info.name}"
            empty = 0
            while self._next <= self._last:
                if await self._pull_once(next_subject, inbox):
                    empty = 0
                    continue
                # An empty pull ends the read only when the consumer has nothing left (the rest
                # of the range was deleted); a missed message must never pass for a gap.
                consumer = await js.consumer_info(self._stream, info.name or "")
                if not consumer.num_pending:
                    break
                empty += 1
                if empty >= 3:
                    raise TimeoutError(f"{self._stream}: pulls come back empty with messages left")
        finally:
            await sub.unsubscribe()
            with contextlib.suppress(Exception):  # an ephemeral consumer expires anyway
                await js.delete_consumer(self._stream, info.name or "")
        return self._out

    async def _pull_once(self, next_subject: str, inbox: str) -> int:
        """One pull request; how many messages it brought."""
        # Without a filter, sequences are dense enough to bound the batch by what is left; with
        # a filter (dead letters) the gaps are unknown, so take full batches.
        left = self._last - self._next + 1 if self._subject is None else PULL_BATCH
        self._requested = min(PULL_BATCH, left)
        self._received = 0
        self._ended.clear()
        request = {"batch": self._requested, "max_bytes": PULL_MAX_BYTES, "no_wait": True}
        await self._nc.publish(next_subject, orjson.dumps(request), reply=inbox)
        seen = -1
        while not self._ended.is_set():
            # Waits on progress, not a fixed time: only a pull that stalls for IDLE_S fails.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ended.wait(), IDLE_S)
            if not self._ended.is_set():
                if self._received == seen:
                    raise TimeoutError(f"{self._stream}: no messages for {IDLE_S}s")
                seen = self._received
        return self._received

    async def _on_message(self, msg: Msg) -> None:
        if not msg.reply:
            # A status without a message: 404 (nothing more), 408 (the request ended), 409
            # (the byte bound reached). This request is over; what it delivered is in.
            self._ended.set()
            return
        self._received += 1
        seq = stream_seq(msg.reply)
        if seq <= self._last:
            self._out.append(self._keep(seq, msg))
            self._next = seq + 1
        else:
            self._next = seq  # past the end: the loop stops
            self._ended.set()
        if self._received >= self._requested:
            self._ended.set()


async def _pull_all(
    nc: Client,
    stream: str,
    first: int,
    last: int,
    *,
    subject: str | None = None,
    keep: Callable[[int, Msg], T],
    headers_only: bool,
) -> list[T]:
    try:
        pull = _Pull(nc, stream, first, last, subject=subject, keep=keep, headers_only=headers_only)
        return await pull.run()
    except NotFoundError:
        raise LookupError(f"stream {stream} does not exist: run `cw init` first") from None
