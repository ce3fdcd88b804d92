"""The writer lease: one projector per durable writes at a time, fenced by an epoch."""

from __future__ import annotations

import hashlib
import logging
from typing import TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from services.consumer.ports import Fenced

Conn: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"

log = logging.getLogger("cw.consumer")

TRY_LOCK = "SELECT pg_try_advisory_lock($1)"
LOCK = "SELECT pg_advisory_lock($1)"
TAKE_LEASE = """
INSERT INTO cw.projector_leases AS l (durable, epoch) VALUES ($1, 1)
ON CONFLICT (durable) DO UPDATE SET epoch = l.epoch + 1
RETURNING epoch
"""
LEASE_EPOCH = "SELECT epoch FROM cw.projector_leases WHERE durable = $1 FOR SHARE"


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
            if not await conn.fetchval(TRY_LOCK, self._key):
                log.warning("another projector holds the write lock: waiting as standby")
                await conn.execute(LOCK, self._key)
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

    def holds(self) -> bool:
        """Whether this process holds the lock now (as far as its connection knows)."""
        return self._conn is not None and not self._conn.is_closed()

    async def release(self) -> None:
        if self._conn is not None and not self._conn.is_closed():
            await self._conn.close()
        self._conn = None
