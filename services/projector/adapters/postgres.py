"""The read model in PostgreSQL: every SQL statement of the projector lives here.

Each generation of the read model is a schema ``cw_rm_<n>``; the public views (the operators'
contract) point at the live one. Statements are templates over the schema name ``{s}``.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime
from typing import TypeAlias
from uuid import UUID

import asyncpg
import asyncpg.exceptions._base as asyncpg_client
import orjson
from asyncpg.pool import PoolConnectionProxy

from contracts import Event, decode_event
from services.projector.domain.model import (
    Changes,
    Issue,
    Needs,
    Outcome,
    Snapshot,
    StreamEvent,
)
from services.projector.domain.ports import (
    CheckpointRegression,
    Fenced,
    ReadModelStore,
    ReadModelUnit,
    Unstorable,
)

log = logging.getLogger("cw.projector")

Conn: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"

PROJECTION = "projector"
READ_MODEL_LOCK = 0x63775F72  # shared by live batches, exclusive for the swap of a rebuild
_SCHEMA = re.compile(r"^cw_rm_[0-9]+$")

GENERATION_DDL = """
CREATE SCHEMA {s};
-- One row per consumer and partition (a subject filter such as one district); written as an
-- upsert that never moves backwards.
CREATE TABLE {s}.checkpoint (
    projection text NOT NULL,
    partition  text NOT NULL DEFAULT '',
    stream_seq bigint NOT NULL,
    PRIMARY KEY (projection, partition)
);
-- The payload is kept as the exact bytes received (validated UTF-8 JSON; the view presents it
-- as json, and bytes go in with a plain copy instead of a decode and a re-encode). Rows arrive in
-- stream_seq order, so a BRIN index serves `cw audit` and the projector's periodic audit of its
-- last window for almost nothing per row (a btree cost the projector 2-3% in A/B runs).
CREATE TABLE {s}.event_archive (
    event_id    uuid PRIMARY KEY,
    stream_seq  bigint NOT NULL,
    event_type  text NOT NULL,
    district    text COLLATE "C" NOT NULL,
    venue_id    text COLLATE "C" NOT NULL,
    phase       text NOT NULL,
    occurred_at timestamptz NOT NULL,
    subject     text NOT NULL,
    payload     bytea NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON {s}.event_archive (venue_id, stream_seq);
CREATE INDEX event_archive_stream_seq ON {s}.event_archive USING brin (stream_seq);
CREATE TABLE {s}.venues (
    district                text COLLATE "C" NOT NULL,
    venue_id                text COLLATE "C" NOT NULL,
    name                    text NOT NULL,
    kind                    text NOT NULL,
    street                  text,
    address                 text,
    first_responsible_name  text NOT NULL,
    first_responsible_phone text,
    officer_name            text,
    officer_phone           text,
    registered_at           timestamptz NOT NULL,
    PRIMARY KEY (district, venue_id)
);
CREATE TABLE {s}.issues (
    district         text COLLATE "C" NOT NULL,
    issue_id         text COLLATE "C" NOT NULL,
    venue_id         text COLLATE "C" NOT NULL,
    phase            text COLLATE "C" NOT NULL,
    item_code        text COLLATE "C" NOT NULL,
    category         text,
    severity         text NOT NULL,
    description      text,
    found_at         timestamptz NOT NULL,
    due_at           timestamptz,
    order_no         text,
    assignee         text,
    closed_at        timestamptz,
    closed_on_time   boolean,
    recheck_failures integer NOT NULL,
    rebound          boolean NOT NULL,
    PRIMARY KEY (district, issue_id)
);
CREATE INDEX ON {s}.issues (district, venue_id, item_code, closed_at);
CREATE INDEX ON {s}.issues (district, venue_id, phase) WHERE closed_at IS NULL;
CREATE TABLE {s}.venue_phase_counts (
    district          text COLLATE "C" NOT NULL,
    venue_id          text COLLATE "C" NOT NULL,
    phase             text COLLATE "C" NOT NULL,
    inspections       integer NOT NULL,
    issues_found      integer NOT NULL,
    issues_closed     integer NOT NULL,
    closed_on_time    integer NOT NULL,
    recheck_failures  integer NOT NULL,
    rebounds          integer NOT NULL,
    last_inspected_at timestamptz,
    PRIMARY KEY (district, venue_id, phase)
);
-- Messages the projector took but did not archive, and why: a duplicate of an archived event,
-- or a dead letter. With the archive, every message up to the checkpoint is accounted for
-- (`cw audit`).
CREATE TABLE {s}.stream_outcomes (
    stream_seq  bigint PRIMARY KEY,
    outcome     text NOT NULL,
    event_id    uuid,
    reason      text,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE {s}.pending_issue_events (
    district   text COLLATE "C" NOT NULL,
    issue_id   text COLLATE "C" NOT NULL,
    stream_seq bigint NOT NULL,
    subject    text NOT NULL,
    phase      text NOT NULL,
    payload    text NOT NULL,
    PRIMARY KEY (district, issue_id, stream_seq)
);
"""

# What a generation created by an earlier version lacks; `cw init` adds it (idempotent).
GENERATION_UPGRADE = """
CREATE TABLE IF NOT EXISTS {s}.stream_outcomes (
    stream_seq  bigint PRIMARY KEY,
    outcome     text NOT NULL,
    event_id    uuid,
    reason      text,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS event_archive_stream_seq ON {s}.event_archive USING brin (stream_seq);
DO $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM information_schema.columns
        WHERE table_schema = '{s}' AND table_name = 'checkpoint' AND column_name = 'partition'
    ) THEN
        ALTER TABLE {s}.checkpoint ADD COLUMN partition text NOT NULL DEFAULT '';
        ALTER TABLE {s}.checkpoint DROP CONSTRAINT checkpoint_pkey;
        ALTER TABLE {s}.checkpoint ADD PRIMARY KEY (projection, partition);
    END IF;
END $$;
"""

# The operators' contract: names and columns stay stable whatever the generation.
PUBLIC_VIEWS = """
CREATE OR REPLACE VIEW public.venues AS
SELECT district, venue_id, name, kind, street, address,
       first_responsible_name, first_responsible_phone, officer_name, officer_phone,
       registered_at
FROM {s}.venues;

CREATE OR REPLACE VIEW public.issue_status AS
SELECT issue_id, district, venue_id, phase, item_code, category, severity,
       CASE WHEN closed_at IS NOT NULL THEN 'closed'
            WHEN due_at IS NULL THEN 'open'
            WHEN due_at < now() THEN 'overdue'
            ELSE 'rectifying' END AS status,
       found_at, due_at, order_no, closed_at, closed_on_time, recheck_failures, rebound,
       assignee, description
FROM {s}.issues;

CREATE OR REPLACE VIEW public.venue_phase_summary AS
SELECT c.district, c.venue_id, COALESCE(v.kind, 'unregistered') AS venue_kind, c.phase,
       c.inspections, c.issues_found,
       COALESCE(o.issues_open, 0) AS issues_open,
       COALESCE(o.issues_overdue, 0) AS issues_overdue,
       c.issues_closed, c.closed_on_time, c.recheck_failures, c.rebounds, c.last_inspected_at
FROM {s}.venue_phase_counts c
LEFT JOIN {s}.venues v ON v.district = c.district AND v.venue_id = c.venue_id
LEFT JOIN LATERAL (
    SELECT count(*)::integer AS issues_open,
           (count(*) FILTER (WHERE i.due_at < now()))::integer AS issues_overdue
    FROM {s}.issues i
    WHERE i.district = c.district AND i.venue_id = c.venue_id AND i.phase = c.phase
      AND i.closed_at IS NULL
) o ON true;

CREATE OR REPLACE VIEW public.phase_summary AS
SELECT phase, venue_kind,
       (count(*) FILTER (WHERE inspections > 0))::integer AS venues_inspected,
       sum(inspections)::integer AS inspections,
       sum(issues_found)::integer AS issues_found,
       sum(issues_open)::integer AS issues_open,
       sum(issues_overdue)::integer AS issues_overdue,
       sum(issues_closed)::integer AS issues_closed,
       sum(closed_on_time)::integer AS closed_on_time,
       sum(recheck_failures)::integer AS recheck_failures,
       sum(rebounds)::integer AS rebounds,
       max(last_inspected_at) AS last_inspected_at
FROM public.venue_phase_summary
GROUP BY phase, venue_kind;

CREATE OR REPLACE VIEW public.event_archive AS
SELECT stream_seq, event_id, event_type, district, venue_id, phase, occurred_at, subject,
       convert_from(payload, 'UTF8')::json AS payload, recorded_at
FROM {s}.event_archive;
"""

HEAD = "SELECT active_schema, generation FROM cw.read_model_head WHERE projection = $1"
INSERT_HEAD = (
    "INSERT INTO cw.read_model_head (projection, active_schema, generation) VALUES ($1, $2, $3)"
)
MOVE_HEAD = (
    "UPDATE cw.read_model_head SET active_schema = $2, generation = $3, activated_at = now() "
    "WHERE projection = $1"
)
NEXT_GENERATION = (
    "SELECT COALESCE(max(substring(nspname FROM 7)::integer), 0) + 1 FROM pg_namespace "
    "WHERE nspname ~ '^cw_rm_[0-9]+$'"
)
LOCK_SHARED = "SELECT pg_advisory_xact_lock_shared($1)"
LOCK_EXCLUSIVE = "SELECT pg_advisory_xact_lock($1)"

CHECKPOINT = """
SELECT stream_seq FROM {s}.checkpoint WHERE projection = $1 AND partition = $2 FOR UPDATE
"""
SET_CHECKPOINT = """
INSERT INTO {s}.checkpoint AS c (projection, partition, stream_seq) VALUES ($1, $2, $3)
ON CONFLICT (projection, partition) DO UPDATE SET stream_seq = EXCLUDED.stream_seq
WHERE c.stream_seq <= EXCLUDED.stream_seq
RETURNING stream_seq
"""

ARCHIVE_COLUMNS = (
    "event_id", "stream_seq", "event_type", "district", "venue_id", "phase", "occurred_at",
    "subject", "payload",
)  # fmt: skip
KNOWN_EVENT_IDS = "SELECT event_id FROM {s}.event_archive WHERE event_id = ANY($1::uuid[])"
ARCHIVED_PAYLOADS = """
SELECT event_id, payload FROM {s}.event_archive WHERE event_id = ANY($1::uuid[])
"""
UNARCHIVE = """
DELETE FROM {s}.event_archive WHERE event_id = ANY($1::uuid[]) AND stream_seq = ANY($2::bigint[])
"""
RECORD_OUTCOMES = """
INSERT INTO {s}.stream_outcomes (stream_seq, outcome, event_id, reason)
SELECT * FROM unnest($1::bigint[], $2::text[], $3::uuid[], $4::text[])
ON CONFLICT (stream_seq) DO UPDATE SET
    outcome = EXCLUDED.outcome, event_id = EXCLUDED.event_id, reason = EXCLUDED.reason
"""

UNSTORABLE = (
    asyncpg.DataError,  # SQLSTATE class 22: a value PostgreSQL cannot hold
    asyncpg.IntegrityConstraintViolationError,  # class 23
    asyncpg_client.DataError,  # a value the driver cannot encode
    OverflowError,  # a date outside what the driver can encode
    UnicodeError,
)
"""Failures that come from the data of a unit, not from the connection: retrying cannot help."""

# Bulk statements take one JSON document per batch: encoding it is one C call (orjson) instead
# of per-element work in the driver, and PostgreSQL parses it on its own core.
ISSUE_COLUMNS = (
    "district, issue_id, venue_id, phase, item_code, category, severity, description, found_at, "
    "due_at, order_no, assignee, closed_at, closed_on_time, recheck_failures, rebound"
)
KEYS = "SELECT k->>0, k->>1 FROM json_array_elements($1::json) AS k"
LOAD_ISSUES = f"""
SELECT {ISSUE_COLUMNS} FROM {{s}}.issues
WHERE (district, issue_id) IN ({KEYS})
"""
LOAD_CLOSURES = """
SELECT i.district, i.venue_id, i.item_code, i.closed_at
FROM {s}.issues i
JOIN (SELECT k->>0 AS district, k->>1 AS venue_id, k->>2 AS item_code
      FROM json_array_elements($1::json) AS k) AS k
  ON i.district = k.district AND i.venue_id = k.venue_id AND i.item_code = k.item_code
WHERE i.closed_at >= $2
"""
LOAD_PENDING = f"""
SELECT district, issue_id, stream_seq, subject, phase, payload
FROM {{s}}.pending_issue_events
WHERE (district, issue_id) IN ({KEYS})
ORDER BY stream_seq
"""
UPSERT_ISSUES = f"""
INSERT INTO {{s}}.issues ({ISSUE_COLUMNS})
SELECT {ISSUE_COLUMNS} FROM json_populate_recordset(NULL::{{s}}.issues, $1::json)
ON CONFLICT (district, issue_id) DO UPDATE SET
    venue_id = EXCLUDED.venue_id, phase = EXCLUDED.phase, item_code = EXCLUDED.item_code,
    category = EXCLUDED.category, severity = EXCLUDED.severity,
    description = EXCLUDED.description, found_at = EXCLUDED.found_at,
    due_at = EXCLUDED.due_at, order_no = EXCLUDED.order_no, assignee = EXCLUDED.assignee,
    closed_at = EXCLUDED.closed_at, closed_on_time = EXCLUDED.closed_on_time,
    recheck_failures = EXCLUDED.recheck_failures, rebound = EXCLUDED.rebound
"""
UPSERT_VENUES = """
INSERT INTO {s}.venues
SELECT * FROM json_populate_recordset(NULL::{s}.venues, $1::json)
ON CONFLICT (district, venue_id) DO UPDATE SET
    name = EXCLUDED.name, kind = EXCLUDED.kind, street = EXCLUDED.street,
    address = EXCLUDED.address, first_responsible_name = EXCLUDED.first_responsible_name,
    first_responsible_phone = EXCLUDED.first_responsible_phone,
    officer_name = EXCLUDED.officer_name, officer_phone = EXCLUDED.officer_phone,
    registered_at = EXCLUDED.registered_at
"""
ADD_COUNTS = """
INSERT INTO {s}.venue_phase_counts AS c
SELECT * FROM json_populate_recordset(NULL::{s}.venue_phase_counts, $1::json)
ON CONFLICT (district, venue_id, phase) DO UPDATE SET
    inspections = c.inspections + EXCLUDED.inspections,
    issues_found = c.issues_found + EXCLUDED.issues_found,
    issues_closed = c.issues_closed + EXCLUDED.issues_closed,
    closed_on_time = c.closed_on_time + EXCLUDED.closed_on_time,
    recheck_failures = c.recheck_failures + EXCLUDED.recheck_failures,
    rebounds = c.rebounds + EXCLUDED.rebounds,
    last_inspected_at = GREATEST(c.last_inspected_at, EXCLUDED.last_inspected_at)
"""
ADD_PENDING = """
INSERT INTO {s}.pending_issue_events
SELECT * FROM json_populate_recordset(NULL::{s}.pending_issue_events, $1::json)
ON CONFLICT DO NOTHING
"""
RESOLVE_PENDING = f"""
DELETE FROM {{s}}.pending_issue_events
WHERE (district, issue_id) IN ({KEYS})
"""
VENUE_HISTORY = """
SELECT stream_seq, subject, phase, payload::text AS payload FROM public.event_archive
WHERE venue_id = $1 AND ($2::text IS NULL OR district = $2) AND occurred_at <= $3
ORDER BY stream_seq
"""


def check_schema(schema: str) -> str:
    """Schema names are interpolated into SQL: only ``cw_rm_<n>`` is ever accepted."""
    if not _SCHEMA.match(schema):
        raise ValueError(f"not a read-model schema: {schema!r}")
    return schema


def _stream_event(seq: int, subject: str, phase: str, payload: str) -> StreamEvent:
    raw = payload.encode()
    return StreamEvent(seq=seq, event=decode_event(raw), raw=raw, subject=subject, phase=phase)


class PostgresUnit(ReadModelUnit):
    """One transaction on a generation; ``consumer`` and ``partition`` key its checkpoint."""

    def __init__(
        self, conn: Conn, schema: str, consumer: str = PROJECTION, partition: str = ""
    ) -> None:
        self._conn = conn
        self._s = check_schema(schema)
        self._consumer = consumer
        self._partition = partition

    def _sql(self, template: str) -> str:
        return template.replace("{s}", self._s)

    async def checkpoint(self) -> int:
        value = await self._conn.fetchval(self._sql(CHECKPOINT), self._consumer, self._partition)
        return int(value or 0)

    async def set_checkpoint(self, seq: int) -> None:
        done = await self._conn.fetchval(
            self._sql(SET_CHECKPOINT), self._consumer, self._partition, seq
        )
        if done is None:
            raise CheckpointRegression(
                f"checkpoint of {self._consumer}/{self._partition or '-'} would move back to {seq}"
            )

    async def archive(self, events: Sequence[StreamEvent]) -> set[int]:
        # Binary COPY is PostgreSQL's cheapest way in, and almost every event id is new: try
        # the whole batch first; only when an id was seen before, look them up and copy the rest.
        try:
            async with self._conn.transaction():
                await self._copy_to_archive(events)
            return {e.seq for e in events}
        except asyncpg.UniqueViolationError:
            pass
        known = {
            r[0]
            for r in await self._conn.fetch(
                self._sql(KNOWN_EVENT_IDS), [e.event.event_id for e in events]
            )
        }
        new = [e for e in events if e.event.event_id not in known]
        if new:
            await self._copy_to_archive(new)
        return {e.seq for e in new}

    async def _copy_to_archive(self, events: Sequence[StreamEvent]) -> None:
        await self._conn.copy_records_to_table(
            "event_archive",
            schema_name=self._s,
            columns=ARCHIVE_COLUMNS,
            records=[
                (
                    e.event.event_id, e.seq, e.event.event_type, e.event.district,
                    e.event.venue_id, e.phase, e.event.occurred_at, e.subject, e.raw,
                )
                for e in events
            ],
        )  # fmt: skip

    async def archived(self, event_ids: Sequence[UUID]) -> Mapping[UUID, Event]:
        if not event_ids:
            return {}
        rows = await self._conn.fetch(self._sql(ARCHIVED_PAYLOADS), list(event_ids))
        return {r["event_id"]: decode_event(bytes(r["payload"])) for r in rows}

    async def unarchive(self, events: Sequence[StreamEvent]) -> None:
        if events:
            await self._conn.execute(
                self._sql(UNARCHIVE),
                [e.event.event_id for e in events],
                [e.seq for e in events],
            )

    async def record_outcomes(self, outcomes: Sequence[Outcome]) -> None:
        await self._conn.execute(
            self._sql(RECORD_OUTCOMES),
            [o.seq for o in outcomes],
            [o.outcome for o in outcomes],
            [o.event_id for o in outcomes],
            [o.reason for o in outcomes],
        )

    async def load(self, needs: Needs) -> Snapshot:
        snap = Snapshot()
        if needs.issue_keys:
            keys = _json(needs.issue_keys)
            for r in await self._conn.fetch(self._sql(LOAD_ISSUES), keys):
                issue = Issue(*r)
                snap.issues[issue.key] = issue
        if needs.items_at_venues and needs.closed_since is not None:
            items = _json(needs.items_at_venues)
            rows = await self._conn.fetch(self._sql(LOAD_CLOSURES), items, needs.closed_since)
            for r in rows:
                snap.closures.setdefault((r[0], r[1], r[2]), []).append(r[3])
        if needs.found_keys:
            keys = _json(needs.found_keys)
            for r in await self._conn.fetch(self._sql(LOAD_PENDING), keys):
                se = _stream_event(r["stream_seq"], r["subject"], r["phase"], r["payload"])
                snap.pending.setdefault((r["district"], r["issue_id"]), []).append(se)
        return snap

    async def save(self, changes: Changes) -> None:
        c = self._conn
        if changes.issues:
            await c.execute(self._sql(UPSERT_ISSUES), _json(list(changes.issues.values())))
        if changes.venues:
            await c.execute(self._sql(UPSERT_VENUES), _json(list(changes.venues.values())))
        if changes.counts:
            rows = [
                {
                    "district": k[0],
                    "venue_id": k[1],
                    "phase": k[2],
                    "inspections": n.inspections,
                    "issues_found": n.issues_found,
                    "issues_closed": n.issues_closed,
                    "closed_on_time": n.closed_on_time,
                    "recheck_failures": n.recheck_failures,
                    "rebounds": n.rebounds,
                    "last_inspected_at": n.last_inspected_at,
                }
                for k, n in changes.counts.items()
            ]
            await c.execute(self._sql(ADD_COUNTS), _json(rows))
        if changes.pending_resolved:
            await c.execute(self._sql(RESOLVE_PENDING), _json(changes.pending_resolved))
        if changes.pending_added:
            rows = [
                {
                    "district": k[0],
                    "issue_id": k[1],
                    "stream_seq": se.seq,
                    "subject": se.subject,
                    "phase": se.phase,
                    "payload": se.raw.decode(),
                }
                for k, se in changes.pending_added
            ]
            await c.execute(self._sql(ADD_PENDING), _json(rows))


def _json(value: object) -> str:
    if isinstance(value, (set, frozenset)):
        value = list(value)
    return orjson.dumps(value).decode()


class PostgresReadModel(ReadModelStore):
    """The read model in a pool's database.

    ``schema=None`` follows the live generation (the live projector); a fixed schema writes to a
    generation being rebuilt beside it.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        schema: str | None = None,
        projection: str = PROJECTION,
        writer: SingleWriter | None = None,
        *,
        consumer: str | None = None,
        partition: str = "",
    ) -> None:
        self._pool = pool
        self._schema = None if schema is None else check_schema(schema)
        self._projection = projection
        self._writer = writer
        self._consumer = consumer or projection
        self._partition = partition

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[PostgresUnit]:
        async with self._pool.acquire() as conn, conn.transaction():
            if self._writer is not None:
                await self._writer.check(conn)
            if self._schema is None:
                # A rebuild's swap takes this lock exclusively: a batch never straddles it.
                await conn.execute(LOCK_SHARED, READ_MODEL_LOCK)
                schema = await active_schema(conn, self._projection)
            else:
                schema = self._schema
            with _unstorable():
                yield PostgresUnit(conn, schema, self._consumer, self._partition)


class ConnectionReadModel(ReadModelStore):
    """A generation written through one connection already inside a transaction (the swap)."""

    def __init__(self, conn: Conn, schema: str, projection: str = PROJECTION):
        self._conn = conn
        self._schema = check_schema(schema)
        self._projection = projection

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[PostgresUnit]:
        async with self._conn.transaction():  # a savepoint inside the swap's transaction
            with _unstorable():
                yield PostgresUnit(self._conn, self._schema, self._projection)


@contextmanager
def _unstorable() -> Iterator[None]:
    try:
        yield
    except UNSTORABLE as exc:
        raise Unstorable(f"{type(exc).__name__}: {exc}") from exc


async def active_schema(conn: Conn, projection: str = PROJECTION) -> str:
    row = await conn.fetchrow(HEAD, projection)
    if row is None:
        raise LookupError("the read model is not initialised: run `cw init`")
    return check_schema(row["active_schema"])


async def create_generation(conn: Conn) -> tuple[str, int]:
    """Create the next empty generation schema; it is not live until ``activate``."""
    generation = int(await conn.fetchval(NEXT_GENERATION))
    schema = check_schema(f"cw_rm_{generation}")
    await conn.execute(GENERATION_DDL.replace("{s}", schema))
    return schema, generation


CARRY_CHECKPOINTS = """
INSERT INTO {new}.checkpoint (projection, partition, stream_seq)
SELECT projection, partition, $1 FROM {old}.checkpoint
ON CONFLICT (projection, partition) DO UPDATE SET stream_seq = EXCLUDED.stream_seq
"""


async def carry_checkpoints(conn: Conn, old: str, new: str, through: int) -> None:
    """At a rebuild's swap: every consumer and partition of the old generation continues from
    ``through`` in the new one, which holds the whole stream up to there."""
    sql = CARRY_CHECKPOINTS.replace("{new}", check_schema(new)).replace("{old}", check_schema(old))
    await conn.execute(sql, through)


async def activate(conn: Conn, schema: str, generation: int, projection: str = PROJECTION) -> None:
    """Point the public views and the head at ``schema``; call inside the swap transaction."""
    await conn.execute(PUBLIC_VIEWS.replace("{s}", check_schema(schema)))
    if await conn.fetchrow(HEAD, projection) is None:
        await conn.execute(INSERT_HEAD, projection, schema, generation)
    else:
        await conn.execute(MOVE_HEAD, projection, schema, generation)


async def ensure_read_model(conn: Conn, projection: str = PROJECTION) -> str:
    """Create the first generation and the views if there is none; report what happened."""
    async with conn.transaction():
        await conn.execute(LOCK_EXCLUSIVE, READ_MODEL_LOCK)
        row = await conn.fetchrow(HEAD, projection)
        if row is not None:
            schema = check_schema(row["active_schema"])
            await conn.execute(GENERATION_UPGRADE.replace("{s}", schema))
            return f"read model: live generation {row['generation']} ({schema})"
        schema, generation = await create_generation(conn)
        await activate(conn, schema, generation, projection)
        return f"read model: created generation {generation} ({schema}) and the public views"


async def venue_history(
    conn: Conn, venue_id: str, district: str | None, as_of: datetime
) -> list[StreamEvent]:
    rows = await conn.fetch(VENUE_HISTORY, venue_id, district, as_of)
    return [_stream_event(r["stream_seq"], r["subject"], r["phase"], r["payload"]) for r in rows]


DROP_GENERATION = "DROP SCHEMA IF EXISTS {s} CASCADE"
TAKE_LEASE = """
INSERT INTO cw.projector_leases AS l (durable, epoch) VALUES ($1, 1)
ON CONFLICT (durable) DO UPDATE SET epoch = l.epoch + 1
RETURNING epoch
"""
LEASE_EPOCH = "SELECT epoch FROM cw.projector_leases WHERE durable = $1 FOR SHARE"


async def drop_generation(conn: Conn, schema: str) -> None:
    """Drop a generation that is not live (the one replaced by a rebuild, or a failed one)."""
    row = await conn.fetchrow(HEAD, PROJECTION)
    if row is not None and row["active_schema"] == schema:
        raise ValueError(f"{schema} is the live generation")
    await conn.execute(DROP_GENERATION.replace("{s}", check_schema(schema)))


def _lock_key(name: str) -> int:
    digest = hashlib.sha256(f"cw.projector:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class SingleWriter:
    """One projector per durable writes at a time; a second one waits as a hot standby.

    A session-level advisory lock on a connection of its own: if that connection drops (a
    PostgreSQL restart), ``ensure`` takes the lock again before the next batch. Each holder
    bumps an epoch (``cw.projector_leases``), and ``check`` in every batch transaction refuses
    to go on once a standby has taken over in between.
    """

    def __init__(self, dsn: str, name: str) -> None:
        self._dsn = dsn
        self._name = name
        self._key = _lock_key(name)
        self._conn: Conn | None = None
        self.epoch: int | None = None

    async def acquire(self) -> None:
        conn = await asyncpg.connect(self._dsn)
        try:
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", self._key):
                log.warning("another projector holds the write lock: waiting as standby")
                await conn.execute("SELECT pg_advisory_lock($1)", self._key)
            self.epoch = int(await conn.fetchval(TAKE_LEASE, self._name))
        except BaseException:
            await conn.close()
            raise
        self._conn = conn

    async def check(self, conn: Conn) -> None:
        """In a batch transaction: hold the lease (a takeover waits) and check that it is ours."""
        current = await conn.fetchval(LEASE_EPOCH, self._name)
        if current != self.epoch:
            raise Fenced(
                f"projector {self._name}: epoch {current} is not ours ({self.epoch}); "
                "another projector took over"
            )

    async def ensure(self) -> bool:
        """Hold the lock; ``True`` if it had been lost and was taken again (maybe after another
        projector wrote in between: whoever becomes the writer starts from the checkpoint)."""
        if self._conn is None or self._conn.is_closed():
            self._conn = None
            log.warning("projector %s: the write lock's connection was lost", self._name)
            await self.acquire()
            return True
        return False

    async def release(self) -> None:
        if self._conn is not None and not self._conn.is_closed():
            await self._conn.close()
        self._conn = None
