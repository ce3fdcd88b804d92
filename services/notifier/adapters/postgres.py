"""The notifier's ledger in PostgreSQL (schema ``cw_notifier``): the reminders received, one
delivery per (reminder, target), every message sent to a target, and the ``CW_REMINDERS``
checkpoint. Every write checks the write lease (``SingleWriter``): a notifier that lost it to
a standby can record nothing more."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import asyncpg

from contracts.reminders import Reminder
from services.common.migrations import migrate
from services.consumer.lease import Conn, SingleWriter
from services.consumer.model import Tracked
from services.consumer.ports import CheckpointRegression
from services.notifier.domain.budget import Attempt
from services.notifier.domain.model import Outcome, Pending, StreamReminder
from services.notifier.domain.targets import Target

SCHEMA = """
CREATE SCHEMA IF NOT EXISTS cw_notifier;
CREATE TABLE IF NOT EXISTS cw_notifier.checkpoints (
    durable    text PRIMARY KEY,
    stream_seq bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
-- The id of the reminder at stream_seq: tells CW_REMINDERS from another stream of that name.
ALTER TABLE cw_notifier.checkpoints ADD COLUMN IF NOT EXISTS message_id text;
CREATE TABLE IF NOT EXISTS cw_notifier.reminders (
    reminder_id uuid PRIMARY KEY,
    stream_seq  bigint NOT NULL,
    subject     text NOT NULL,
    kind        text NOT NULL,
    district    text NOT NULL,
    payload     bytea NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS cw_notifier.deliveries (
    reminder_id  uuid NOT NULL REFERENCES cw_notifier.reminders,
    target       text NOT NULL,
    target_kind  text NOT NULL,
    stream_seq   bigint NOT NULL,
    state        text NOT NULL DEFAULT 'pending'
                 CHECK (state IN ('pending', 'delivered', 'dead_lettered')),
    attempts     integer NOT NULL DEFAULT 0,
    last_attempt bigint,
    detail       text,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    done_at      timestamptz,
    PRIMARY KEY (reminder_id, target)
);
-- A target's next deliveries in PENDING's order, read from the index's start: with the order's
-- last key missing from it, every query sorted the target's whole backlog (70 ms a delivery at
-- 20,000 waiting). The index of that shape, from before, is replaced.
DROP INDEX IF EXISTS cw_notifier.deliveries_waiting;
CREATE INDEX IF NOT EXISTS deliveries_next
    ON cw_notifier.deliveries (target, stream_seq, reminder_id) WHERE state = 'pending';
CREATE TABLE IF NOT EXISTS cw_notifier.attempts (
    attempt_id  bigserial PRIMARY KEY,
    target      text NOT NULL,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz,
    outcome     text,
    reminders   integer NOT NULL,
    detail      text
);
CREATE INDEX IF NOT EXISTS attempts_recent ON cw_notifier.attempts (target, started_at);
"""

CHECKPOINT = "SELECT stream_seq, message_id FROM cw_notifier.checkpoints WHERE durable = $1"
CHECKPOINT_FOR_UPDATE = (
    "SELECT stream_seq FROM cw_notifier.checkpoints WHERE durable = $1 FOR UPDATE"
)
SET_CHECKPOINT = """
INSERT INTO cw_notifier.checkpoints AS c (durable, stream_seq, message_id) VALUES ($1, $2, $3)
ON CONFLICT (durable) DO UPDATE
SET stream_seq = excluded.stream_seq, message_id = excluded.message_id, updated_at = now()
"""
# `cw tracking reset notifier`: the next check finds checkpoint 0 (nothing taken yet) and the
# notifier replays the stream from its start; the ledger (keyed by reminder id) sends nothing twice.
TRACKING_FOR_UPDATE = (
    "SELECT stream_seq, message_id FROM cw_notifier.checkpoints WHERE durable = $1 FOR UPDATE"
)
RESET_CHECKPOINT = """
UPDATE cw_notifier.checkpoints SET stream_seq = 0, message_id = NULL, updated_at = now()
WHERE durable = $1
"""
INSERT_REMINDERS = """
INSERT INTO cw_notifier.reminders (reminder_id, stream_seq, subject, kind, district, payload)
SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::bytea[])
ON CONFLICT (reminder_id) DO NOTHING
"""
INSERT_DELIVERIES = """
INSERT INTO cw_notifier.deliveries (reminder_id, target, target_kind, stream_seq)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bigint[])
ON CONFLICT (reminder_id, target) DO NOTHING
"""
PENDING = """
SELECT r.payload, r.stream_seq, r.subject
FROM cw_notifier.deliveries d JOIN cw_notifier.reminders r USING (reminder_id)
WHERE d.target = $1 AND d.state = 'pending'
ORDER BY d.stream_seq, d.reminder_id
LIMIT $2
"""
ATTEMPTS = """
SELECT started_at, finished_at, outcome = 'throttled' AS throttled
FROM cw_notifier.attempts WHERE target = $1 AND started_at > $2
"""
BEGIN_ATTEMPT = """
INSERT INTO cw_notifier.attempts (target, started_at, reminders) VALUES ($1, $2, $3)
RETURNING attempt_id
"""
MARK_ATTEMPTED = """
UPDATE cw_notifier.deliveries SET attempts = attempts + 1, last_attempt = $3
WHERE target = $1 AND reminder_id = ANY($2::uuid[])
"""
FINISH_ATTEMPT = """
UPDATE cw_notifier.attempts SET finished_at = $2, outcome = $3, detail = $4
WHERE attempt_id = $1
"""
MARK_DONE = """
UPDATE cw_notifier.deliveries SET state = $3, detail = $4, done_at = $5
WHERE target = $1 AND reminder_id = ANY($2::uuid[]) AND state = 'pending'
"""
MARK_FAILED = """
UPDATE cw_notifier.deliveries SET detail = $3
WHERE target = $1 AND reminder_id = ANY($2::uuid[]) AND state = 'pending'
"""
WAITING = """
SELECT target, target_kind, count(*) AS n FROM cw_notifier.deliveries
WHERE state = 'pending' GROUP BY target, target_kind
"""
DONE = ("delivered", "dead_lettered")


async def ensure_schema(conn: asyncpg.Connection) -> list[str]:
    """``cw init``'s part: the shared migrations (the write leases), then ``cw_notifier``."""
    report = await migrate(conn)
    existed = await conn.fetchval("SELECT to_regclass('cw_notifier.deliveries') IS NOT NULL")
    await conn.execute(SCHEMA)
    report.append("notifier ledger (cw_notifier): " + ("exists" if existed else "created"))
    return report


async def lock_tracking(conn: Conn, durable: str) -> Tracked:
    """The notifier's tracking row, locked until the transaction ends (a batch waits)."""
    row = await conn.fetchrow(TRACKING_FOR_UPDATE, durable)
    return Tracked(0) if row is None else Tracked(int(row[0]), row[1])


async def reset_tracking(conn: Conn, durable: str) -> None:
    """Back to the stream's start: checkpoint 0, no message id."""
    await conn.execute(RESET_CHECKPOINT, durable)


class PostgresLedger:
    def __init__(self, pool: asyncpg.Pool, durable: str, writer: SingleWriter | None) -> None:
        self._pool = pool
        self._durable = durable
        self._writer = writer

    async def checkpoint(self) -> int:
        return (await self.tracked()).seq

    async def tracked(self) -> Tracked:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(CHECKPOINT, self._durable)
        return Tracked(0) if row is None else Tracked(int(row[0]), row[1])

    async def record(
        self,
        reminders: Sequence[StreamReminder],
        targets: Sequence[Target],
        through_seq: int,
        through_id: str | None = None,
    ) -> int:
        rows = list(reminders)
        deliveries = [(r, t) for r in rows for t in targets if t.wants(r.reminder)]
        async with self._pool.acquire() as conn, conn.transaction():
            await self._check(conn)
            before = await conn.fetchval(CHECKPOINT_FOR_UPDATE, self._durable)
            if before is not None and before > through_seq:
                raise CheckpointRegression(
                    f"notifier {self._durable}: checkpoint would move back from {before} to "
                    f"{through_seq}"
                )
            if rows:
                await conn.execute(
                    INSERT_REMINDERS,
                    [r.reminder.reminder_id for r in rows],
                    [r.seq for r in rows],
                    [r.subject for r in rows],
                    [r.reminder.kind for r in rows],
                    [r.reminder.district for r in rows],
                    [r.raw for r in rows],
                )
            added = 0
            if deliveries:
                status = await conn.execute(
                    INSERT_DELIVERIES,
                    [r.reminder.reminder_id for r, _ in deliveries],
                    [t.name for _, t in deliveries],
                    [t.kind for _, t in deliveries],
                    [r.seq for r, _ in deliveries],
                )
                added = int(status.rsplit(" ", 1)[-1])
            await conn.execute(SET_CHECKPOINT, self._durable, through_seq, through_id)
        return added

    async def pending(self, target: str, limit: int) -> list[Pending]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(PENDING, target, limit)
        return [
            Pending(Reminder.model_validate_json(r["payload"]), r["stream_seq"], r["subject"],
                    bytes(r["payload"]))
            for r in rows
        ]  # fmt: skip

    async def attempts(self, target: str, since: datetime) -> list[Attempt]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(ATTEMPTS, target, since)
        return [Attempt(r["started_at"], r["finished_at"], bool(r["throttled"])) for r in rows]

    async def begin(self, target: str, reminder_ids: Sequence[UUID], started_at: datetime) -> int:
        async with self._pool.acquire() as conn, conn.transaction():
            await self._check(conn)
            attempt = int(await conn.fetchval(BEGIN_ATTEMPT, target, started_at, len(reminder_ids)))
            await conn.execute(MARK_ATTEMPTED, target, list(reminder_ids), attempt)
        return attempt

    async def finish(
        self,
        target: str,
        attempt_id: int,
        reminder_ids: Sequence[UUID],
        *,
        outcome: Outcome,
        detail: str,
        finished_at: datetime,
    ) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await self._check(conn)
            await conn.execute(FINISH_ATTEMPT, attempt_id, finished_at, outcome, detail or None)
            if outcome in DONE:
                await conn.execute(
                    MARK_DONE, target, list(reminder_ids), outcome, detail or None, finished_at
                )
            else:
                await conn.execute(MARK_FAILED, target, list(reminder_ids), detail)

    async def waiting(self) -> list[tuple[str, str, int]]:
        """(target, its kind, deliveries not yet done) for every target with some."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(WAITING)
        return [(r["target"], r["target_kind"], int(r["n"])) for r in rows]

    async def _check(self, conn: Conn) -> None:
        if self._writer is not None:
            await self._writer.check(conn)
