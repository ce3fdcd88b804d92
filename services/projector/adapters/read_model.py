"""The read model's store: one unit of work (a transaction) on a generation of the read model.

``PostgresUnit`` is the port ``ReadModelUnit``; ``PostgresReadModel`` and ``ConnectionReadModel``
are ``ReadModelStore``s that open one on a pool (following the live generation, or a fixed one)
or on a connection already inside the swap's transaction. Statements are templates over the
schema name ``{s}``; a failure that comes from the data of a unit is raised as ``Unstorable``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import fields
from uuid import UUID

import asyncpg
import asyncpg.exceptions._base as asyncpg_client
import orjson

from contracts import Event, decode_event
from services.consumer.lease import SingleWriter
from services.projector.adapters.generations import (
    LOCK_SHARED,
    PROJECTION,
    READ_MODEL_LOCK,
    Conn,
    active_schema,
    check_schema,
)
from services.projector.domain.model import (
    Changes,
    Issue,
    Needs,
    Outcome,
    Snapshot,
    StreamEvent,
    Tracked,
    VenuePhaseCounts,
)
from services.projector.domain.ports import (
    CheckpointRegression,
    ReadModelStore,
    ReadModelUnit,
    Unstorable,
)

CHECKPOINT = """
SELECT stream_seq, message_id FROM {s}.checkpoint
WHERE projection = $1 AND partition = $2 FOR UPDATE
"""
SET_CHECKPOINT = """
INSERT INTO {s}.checkpoint AS c (projection, partition, stream_seq, message_id)
VALUES ($1, $2, $3, $4)
ON CONFLICT (projection, partition) DO UPDATE
SET stream_seq = EXCLUDED.stream_seq, message_id = EXCLUDED.message_id
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
    "due_at, order_no, assignee, closed_at, closed_on_time, recheck_failures, rebound, "
    "original_due_at, extensions"
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
    recheck_failures = EXCLUDED.recheck_failures, rebound = EXCLUDED.rebound,
    original_due_at = EXCLUDED.original_due_at, extensions = EXCLUDED.extensions
"""
UPSERT_VENUES = """
INSERT INTO {s}.venues AS v
SELECT * FROM json_populate_recordset(NULL::{s}.venues, $1::json)
ON CONFLICT (district, venue_id) DO UPDATE SET
    name = EXCLUDED.name, kind = EXCLUDED.kind, street = EXCLUDED.street,
    address = EXCLUDED.address, first_responsible_name = EXCLUDED.first_responsible_name,
    first_responsible_phone = EXCLUDED.first_responsible_phone,
    officer_name = EXCLUDED.officer_name, officer_phone = EXCLUDED.officer_phone,
    registered_at = LEAST(v.registered_at, EXCLUDED.registered_at)
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
    last_inspected_at = GREATEST(c.last_inspected_at, EXCLUDED.last_inspected_at),
    inspections_self_check = c.inspections_self_check + EXCLUDED.inspections_self_check,
    inspections_supervision = c.inspections_supervision + EXCLUDED.inspections_supervision,
    inspections_look_back = c.inspections_look_back + EXCLUDED.inspections_look_back,
    inspections_re_review = c.inspections_re_review + EXCLUDED.inspections_re_review,
    items_checked = c.items_checked + EXCLUDED.items_checked,
    items_failed = c.items_failed + EXCLUDED.items_failed
"""
PENDING_COLUMNS = "district, issue_id, stream_seq, subject, phase, payload"
# waiting_since is the table's default (now()): when the projector took the follow-up.
ADD_PENDING = f"""
INSERT INTO {{s}}.pending_issue_events ({PENDING_COLUMNS})
SELECT {PENDING_COLUMNS}
FROM json_populate_recordset(NULL::{{s}}.pending_issue_events, $1::json)
ON CONFLICT DO NOTHING
"""
RESOLVE_PENDING = f"""
DELETE FROM {{s}}.pending_issue_events
WHERE (district, issue_id) IN ({KEYS})
"""


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
        return (await self.tracked()).seq

    async def tracked(self) -> Tracked:
        row = await self._conn.fetchrow(self._sql(CHECKPOINT), self._consumer, self._partition)
        return Tracked(0) if row is None else Tracked(int(row[0]), row[1])

    async def set_checkpoint(self, seq: int, message_id: str | None = None) -> None:
        done = await self._conn.fetchval(
            self._sql(SET_CHECKPOINT), self._consumer, self._partition, seq, message_id
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
            r["event_id"]
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
                issue = _issue(r)
                snap.issues[issue.key] = issue
        if needs.items_at_venues and needs.closed_since is not None:
            items = _json(needs.items_at_venues)
            rows = await self._conn.fetch(self._sql(LOAD_CLOSURES), items, needs.closed_since)
            for r in rows:
                key = (r["district"], r["venue_id"], r["item_code"])
                snap.closures.setdefault(key, []).append(r["closed_at"])
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
                {"district": k[0], "venue_id": k[1], "phase": k[2], **_counts(n)}
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


def _issue(r: asyncpg.Record) -> Issue:
    """An issue from a row of ``LOAD_ISSUES``: each field by its column's name, not its position."""
    return Issue(**dict(r.items()))


def _counts(n: VenuePhaseCounts) -> dict[str, object]:
    return {f.name: getattr(n, f.name) for f in fields(VenuePhaseCounts)}


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


VENUE_HISTORY = """
SELECT stream_seq, subject, phase, payload::text AS payload FROM public.event_archive
WHERE venue_id = $1 AND ($2::text IS NULL OR district = $2)
ORDER BY stream_seq
"""


# A venue by (part of) its name or id, case-insensitive; strpos, not LIKE, so that % and _ in
# what a person typed are plain characters.
FIND_VENUES = """
SELECT district, venue_id, name FROM public.venues
WHERE ($2::text IS NULL OR district = $2)
  AND (strpos(lower(name), lower($1)) > 0 OR strpos(lower(venue_id), lower($1)) > 0)
ORDER BY district, venue_id
"""


async def find_venues(conn: Conn, text: str, district: str | None) -> list[tuple[str, str, str]]:
    """The registered venues whose name or id holds ``text``: (district, venue_id, name)."""
    rows = await conn.fetch(FIND_VENUES, text, district)
    return [(r["district"], r["venue_id"], r["name"]) for r in rows]


async def venue_history(conn: Conn, venue_id: str, district: str | None) -> list[StreamEvent]:
    """What ``cw venue --as-of`` replays: the venue's archived events through the public view,
    all of them (a venue whose every event came after the moment still exists)."""
    rows = await conn.fetch(VENUE_HISTORY, venue_id, district)
    return [_stream_event(r["stream_seq"], r["subject"], r["phase"], r["payload"]) for r in rows]
