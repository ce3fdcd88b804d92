"""The reminders' store in PostgreSQL (schema ``cw_reminders``, migration 004): every statement.

Each unit is one transaction, fenced by the writer lease (``services.consumer.lease``): a
process whose lease passed to a standby can no longer commit anything.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime
from uuid import UUID

import asyncpg
import orjson

from contracts import decode_event
from services.common.lifecycle import Issue, IssueKey, Needs
from services.consumer.lease import Conn, SingleWriter
from services.consumer.model import StreamEvent, Tracked
from services.consumer.ports import Unstorable
from services.reminders.domain.model import Changes, OutboxEntry, Snapshot, Timer, Venue
from services.reminders.domain.ports import CheckpointRegression, ReminderStore, ReminderUnit

CONSUMER = "reminders"

CHECKPOINT = """
SELECT stream_seq, message_id FROM cw_reminders.checkpoint WHERE consumer = $1 FOR UPDATE
"""
SET_CHECKPOINT = """
INSERT INTO cw_reminders.checkpoint AS c (consumer, stream_seq, message_id) VALUES ($1, $2, $3)
ON CONFLICT (consumer) DO UPDATE
SET stream_seq = EXCLUDED.stream_seq, message_id = EXCLUDED.message_id
WHERE c.stream_seq <= EXCLUDED.stream_seq
RETURNING stream_seq
"""
# `cw tracking reset reminders`: the next check finds checkpoint 0 (nothing taken yet) and the
# service replays the stream from its start; seen_events keeps it from applying anything twice.
RESET_CHECKPOINT = """
UPDATE cw_reminders.checkpoint SET stream_seq = 0, message_id = NULL WHERE consumer = $1
"""
REMEMBER = """
INSERT INTO cw_reminders.seen_events (event_id, stream_seq)
SELECT * FROM unnest($1::uuid[], $2::bigint[])
ON CONFLICT (event_id) DO NOTHING
RETURNING stream_seq
"""
FORGET = """
DELETE FROM cw_reminders.seen_events
WHERE event_id = ANY($1::uuid[]) AND stream_seq = ANY($2::bigint[])
"""
ISSUE_COLUMNS = (
    "district, issue_id, venue_id, phase, item_code, category, severity, description, found_at, "
    "due_at, order_no, assignee, closed_at, closed_on_time, recheck_failures, rebound"
)
TIMER_COLUMNS = "reminder_id, district, issue_id, kind, level, deadline, fire_at, state, reason"
VENUE_COLUMNS = (
    "district, venue_id, name, first_responsible_name, first_responsible_phone, officer_name, "
    "officer_phone"
)
KEYS = "SELECT k->>0, k->>1 FROM json_array_elements($1::json) AS k"
LOAD_ISSUES = f"""
SELECT {ISSUE_COLUMNS} FROM cw_reminders.issues WHERE (district, issue_id) IN ({KEYS})
"""
LOAD_CLOSURES = """
SELECT i.district, i.venue_id, i.item_code, i.closed_at
FROM cw_reminders.issues i
JOIN (SELECT k->>0 AS district, k->>1 AS venue_id, k->>2 AS item_code
      FROM json_array_elements($1::json) AS k) AS k
  ON i.district = k.district AND i.venue_id = k.venue_id AND i.item_code = k.item_code
WHERE i.closed_at >= $2
"""
LOAD_PENDING = f"""
SELECT district, issue_id, stream_seq, subject, phase, payload
FROM cw_reminders.pending_issue_events WHERE (district, issue_id) IN ({KEYS})
ORDER BY stream_seq
"""
# FOR UPDATE: the dispatcher (SKIP LOCKED) leaves these timers alone until the batch commits,
# so a timer is never fired and cancelled at the same time.
LOAD_TIMERS = f"""
SELECT {TIMER_COLUMNS} FROM cw_reminders.timers WHERE (district, issue_id) IN ({KEYS})
FOR UPDATE
"""
DIGEST_DISTRICTS = """
SELECT DISTINCT district FROM cw_reminders.timers
WHERE kind = 'digest' AND state = 'pending' AND district = ANY($1::text[])
"""
UPSERT_ISSUES = f"""
INSERT INTO cw_reminders.issues ({ISSUE_COLUMNS})
SELECT {ISSUE_COLUMNS} FROM json_populate_recordset(NULL::cw_reminders.issues, $1::json)
ON CONFLICT (district, issue_id) DO UPDATE SET
    due_at = EXCLUDED.due_at, order_no = EXCLUDED.order_no, assignee = EXCLUDED.assignee,
    closed_at = EXCLUDED.closed_at, closed_on_time = EXCLUDED.closed_on_time,
    recheck_failures = EXCLUDED.recheck_failures, rebound = EXCLUDED.rebound
"""
UPSERT_VENUES = f"""
INSERT INTO cw_reminders.venues ({VENUE_COLUMNS})
SELECT {VENUE_COLUMNS} FROM json_populate_recordset(NULL::cw_reminders.venues, $1::json)
ON CONFLICT (district, venue_id) DO UPDATE SET
    name = EXCLUDED.name, first_responsible_name = EXCLUDED.first_responsible_name,
    first_responsible_phone = EXCLUDED.first_responsible_phone,
    officer_name = EXCLUDED.officer_name, officer_phone = EXCLUDED.officer_phone
"""
ADD_PENDING = """
INSERT INTO cw_reminders.pending_issue_events
SELECT * FROM json_populate_recordset(NULL::cw_reminders.pending_issue_events, $1::json)
ON CONFLICT DO NOTHING
"""
RESOLVE_PENDING = f"""
DELETE FROM cw_reminders.pending_issue_events WHERE (district, issue_id) IN ({KEYS})
"""
# A sent or skipped timer never changes again: a reminder goes out once, or never.
UPSERT_TIMERS = f"""
INSERT INTO cw_reminders.timers AS t ({TIMER_COLUMNS})
SELECT {TIMER_COLUMNS} FROM json_populate_recordset(NULL::cw_reminders.timers, $1::json)
ON CONFLICT (reminder_id) DO UPDATE SET
    state = EXCLUDED.state, reason = EXCLUDED.reason, fire_at = EXCLUDED.fire_at,
    settled_at = CASE WHEN EXCLUDED.state = 'pending' THEN NULL ELSE now() END
WHERE t.state IN ('pending', 'cancelled')
"""
DUE_TIMERS = f"""
SELECT {TIMER_COLUMNS} FROM cw_reminders.timers
WHERE state = 'pending' AND fire_at <= $1
ORDER BY fire_at, reminder_id
LIMIT $2
FOR UPDATE SKIP LOCKED
"""
LOAD_VENUES = f"""
SELECT {VENUE_COLUMNS} FROM cw_reminders.venues WHERE (district, venue_id) IN ({KEYS})
"""
OPEN_ISSUES = f"""
SELECT {ISSUE_COLUMNS} FROM cw_reminders.issues WHERE district = $1 AND closed_at IS NULL
"""
SETTLE = """
UPDATE cw_reminders.timers AS t SET state = u.state, reason = u.reason, settled_at = now()
FROM unnest($1::uuid[], $2::text[], $3::text[]) AS u (reminder_id, state, reason)
WHERE t.reminder_id = u.reminder_id
"""
RECORD = """
INSERT INTO cw_reminders.outbox (reminder_id, kind, subject, payload, fire_at, recorded_at)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bytea[], $5::timestamptz[],
                     $6::timestamptz[])
ON CONFLICT (reminder_id) DO NOTHING
"""
UNPUBLISHED = """
SELECT reminder_id, kind, subject, payload, fire_at, recorded_at FROM cw_reminders.outbox
WHERE published_at IS NULL AND expired_at IS NULL
ORDER BY fire_at, reminder_id
LIMIT $1
"""
MARK_PUBLISHED = """
UPDATE cw_reminders.outbox SET published_at = $2 WHERE reminder_id = ANY($1::uuid[])
"""
MARK_EXPIRED = """
UPDATE cw_reminders.outbox SET expired_at = $2
WHERE reminder_id = ANY($1::uuid[]) AND published_at IS NULL
"""
NEXT_FIRE_AT = "SELECT min(fire_at) FROM cw_reminders.timers WHERE state = 'pending'"
PENDING_COUNTS = """
SELECT kind, count(*) AS n FROM cw_reminders.timers WHERE state = 'pending' GROUP BY kind
"""
UNPUBLISHED_COUNT = """
SELECT count(*) FROM cw_reminders.outbox WHERE published_at IS NULL AND expired_at IS NULL
"""

UNSTORABLE = (
    asyncpg.DataError,
    asyncpg.IntegrityConstraintViolationError,
    OverflowError,
    UnicodeError,
)


def _json(value: object) -> str:
    if isinstance(value, (set, frozenset)):
        value = list(value)
    return orjson.dumps(value).decode()


def _uuid(value: UUID) -> UUID:
    # asyncpg's own UUID type is a subclass that orjson (which writes timers back) refuses.
    return UUID(bytes=value.bytes)


def _timer(r: asyncpg.Record) -> Timer:
    row = dict(r.items())
    row["reminder_id"] = _uuid(row["reminder_id"])
    return Timer(**row)


def _issue(r: asyncpg.Record) -> Issue:
    return Issue(**dict(r.items()))


def _venue(r: asyncpg.Record) -> Venue:
    return Venue(**dict(r.items()))


async def lock_tracking(conn: Conn, consumer: str = CONSUMER) -> Tracked:
    """The reminders' tracking row, locked until the transaction ends (a batch waits)."""
    row = await conn.fetchrow(CHECKPOINT, consumer)
    return Tracked(0) if row is None else Tracked(int(row[0]), row[1])


async def reset_tracking(conn: Conn, consumer: str = CONSUMER) -> None:
    """Back to the stream's start: checkpoint 0, no message id."""
    await conn.execute(RESET_CHECKPOINT, consumer)


class PostgresReminderUnit(ReminderUnit):
    def __init__(self, conn: Conn, consumer: str = CONSUMER) -> None:
        self._conn = conn
        self._consumer = consumer

    async def checkpoint(self) -> int:
        return (await self.tracked()).seq

    async def tracked(self) -> Tracked:
        row = await self._conn.fetchrow(CHECKPOINT, self._consumer)
        return Tracked(0) if row is None else Tracked(int(row[0]), row[1])

    async def set_checkpoint(self, seq: int, message_id: str | None = None) -> None:
        if await self._conn.fetchval(SET_CHECKPOINT, self._consumer, seq, message_id) is None:
            raise CheckpointRegression(f"reminders' checkpoint would move back to {seq}")

    async def remember(self, events: Sequence[StreamEvent]) -> set[int]:
        rows = await self._conn.fetch(
            REMEMBER, [se.event.event_id for se in events], [se.seq for se in events]
        )
        return {int(r["stream_seq"]) for r in rows}

    async def forget(self, events: Sequence[StreamEvent]) -> None:
        if events:
            await self._conn.execute(
                FORGET, [se.event.event_id for se in events], [se.seq for se in events]
            )

    async def load(self, needs: Needs, districts: Collection[str]) -> Snapshot:
        snap = Snapshot()
        c = self._conn
        if needs.issue_keys:
            keys = _json(needs.issue_keys)
            for r in await c.fetch(LOAD_ISSUES, keys):
                issue = _issue(r)
                snap.issues[issue.key] = issue
            for r in await c.fetch(LOAD_TIMERS, keys):
                t = _timer(r)
                snap.timers.setdefault((t.district, t.issue_id or ""), []).append(t)
        if needs.items_at_venues and needs.closed_since is not None:
            rows = await c.fetch(LOAD_CLOSURES, _json(needs.items_at_venues), needs.closed_since)
            for r in rows:
                item = (r["district"], r["venue_id"], r["item_code"])
                snap.closures.setdefault(item, []).append(r["closed_at"])
        if needs.found_keys:
            for r in await c.fetch(LOAD_PENDING, _json(needs.found_keys)):
                raw = r["payload"].encode()
                se = StreamEvent(r["stream_seq"], decode_event(raw), raw, r["subject"], r["phase"])
                snap.pending.setdefault((r["district"], r["issue_id"]), []).append(se)
        if districts:
            rows = await c.fetch(DIGEST_DISTRICTS, list(districts))
            snap.digest_districts = {r["district"] for r in rows}
        return snap

    async def save(self, changes: Changes) -> None:
        c = self._conn
        if changes.issues:
            await c.execute(UPSERT_ISSUES, _json(list(changes.issues.values())))
        if changes.venues:
            await c.execute(UPSERT_VENUES, _json(list(changes.venues.values())))
        if changes.pending_resolved:
            await c.execute(RESOLVE_PENDING, _json(changes.pending_resolved))
        if changes.pending_added:
            rows = [
                {"district": k[0], "issue_id": k[1], "stream_seq": se.seq, "subject": se.subject,
                 "phase": se.phase, "payload": se.raw.decode()}
                for k, se in changes.pending_added
            ]  # fmt: skip
            await c.execute(ADD_PENDING, _json(rows))
        if changes.timers:
            await self.add_timers(list(changes.timers.values()))

    async def due_timers(self, now: datetime, limit: int) -> list[Timer]:
        return [_timer(r) for r in await self._conn.fetch(DUE_TIMERS, now, limit)]

    async def issues(self, keys: Collection[IssueKey]) -> dict[IssueKey, Issue]:
        if not keys:
            return {}
        return {(i.district, i.issue_id): i for i in map(_issue, await self._conn.fetch(
            LOAD_ISSUES, _json(keys)))}  # fmt: skip

    async def venues(self, keys: Collection[tuple[str, str]]) -> dict[tuple[str, str], Venue]:
        if not keys:
            return {}
        rows = await self._conn.fetch(LOAD_VENUES, _json(keys))
        return {(v.district, v.venue_id): v for v in map(_venue, rows)}

    async def open_issues(self, district: str) -> list[Issue]:
        return [_issue(r) for r in await self._conn.fetch(OPEN_ISSUES, district)]

    async def settle(self, timers: Sequence[Timer]) -> None:
        if timers:
            await self._conn.execute(
                SETTLE,
                [t.reminder_id for t in timers],
                [t.state for t in timers],
                [t.reason for t in timers],
            )

    async def add_timers(self, timers: Sequence[Timer]) -> None:
        if timers:
            await self._conn.execute(UPSERT_TIMERS, _json(list(timers)))

    async def record(self, entries: Sequence[OutboxEntry]) -> None:
        if entries:
            await self._conn.execute(
                RECORD,
                [e.reminder_id for e in entries],
                [e.kind for e in entries],
                [e.subject for e in entries],
                [e.payload for e in entries],
                [e.fire_at for e in entries],
                [e.recorded_at for e in entries],
            )

    async def unpublished(self, limit: int) -> list[OutboxEntry]:
        rows = await self._conn.fetch(UNPUBLISHED, limit)
        return [
            OutboxEntry(**{**dict(r.items()), "reminder_id": _uuid(r["reminder_id"])}) for r in rows
        ]

    async def mark_published(self, ids: Sequence[UUID], at: datetime) -> None:
        await self._conn.execute(MARK_PUBLISHED, list(ids), at)

    async def mark_expired(self, ids: Sequence[UUID], at: datetime) -> None:
        await self._conn.execute(MARK_EXPIRED, list(ids), at)

    async def next_fire_at(self) -> datetime | None:
        value: datetime | None = await self._conn.fetchval(NEXT_FIRE_AT)
        return value

    async def pending_counts(self) -> Mapping[str, int]:
        return {r["kind"]: int(r["n"]) for r in await self._conn.fetch(PENDING_COUNTS)}

    async def unpublished_count(self) -> int:
        return int(await self._conn.fetchval(UNPUBLISHED_COUNT))


class PostgresReminders(ReminderStore):
    """The reminders' store in a pool's database; with a writer, every unit is fenced."""

    def __init__(self, pool: asyncpg.Pool, writer: SingleWriter | None = None) -> None:
        self._pool = pool
        self._writer = writer

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[PostgresReminderUnit]:
        async with self._pool.acquire() as conn, conn.transaction():
            if self._writer is not None:
                await self._writer.check(conn)
            with _unstorable():
                yield PostgresReminderUnit(conn)


@contextmanager
def _unstorable() -> Iterator[None]:
    try:
        yield
    except UNSTORABLE as exc:
        raise Unstorable(f"{type(exc).__name__}: {exc}") from exc
