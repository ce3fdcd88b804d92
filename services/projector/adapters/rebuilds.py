"""The rebuild's ports in PostgreSQL and JetStream: generations built beside the live one and
swapped in under the read model's exclusive lock; where the stream ends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from contracts.wire import EVENTS_STREAM
from services.consumer.jetstream import EventSource, stream_last_seq
from services.projector.adapters.generations import (
    LOCK_EXCLUSIVE,
    READ_MODEL_LOCK,
    Conn,
    activate,
    active_schema,
    carry_checkpoints,
    check_schema,
    compare_archives,
    create_generation,
    drop_generation,
    missing_events,
)
from services.projector.adapters.read_model import ConnectionReadModel, PostgresReadModel
from services.projector.domain.model import Prepared
from services.projector.domain.ports import (
    Comparison,
    Generation,
    Generations,
    Missing,
    ReadModelStore,
    Swap,
)

READ_MODEL_INITIALISED = "SELECT to_regclass('cw.read_model_head') IS NOT NULL"


async def read_model_initialised(conn: asyncpg.Connection) -> bool:
    return bool(await conn.fetchval(READ_MODEL_INITIALISED))


async def events_stream_exists(js: JetStreamContext) -> bool:
    try:
        await js.stream_info(EVENTS_STREAM)
    except NotFoundError:
        return False
    return True


class PostgresGenerations(Generations):
    """Generations are schemas ``cw_rm_<n>``; the views and ``cw.read_model_head`` say which
    one is live."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create(self) -> Generation:
        async with self._pool.acquire() as conn:
            schema, number = await create_generation(conn)
        return Generation(schema, number)

    def store(self, generation: str) -> ReadModelStore:
        return PostgresReadModel(self._pool, generation)

    async def compare(self, generation: str) -> Comparison:
        async with self._pool.acquire() as conn:
            live = await active_schema(conn)
            through, missing = await compare_archives(conn, live, generation)
        return Comparison(live, through, None if missing is None else tuple(missing))

    @asynccontextmanager
    async def swapping(self, generation: str) -> AsyncIterator[Swap]:
        async with self._pool.acquire() as conn, conn.transaction():
            # Live batches wait here; readers keep reading the old generation until commit.
            await conn.execute(LOCK_EXCLUSIVE, READ_MODEL_LOCK)
            yield _PostgresSwap(conn, generation)

    async def drop(self, generation: str) -> None:
        async with self._pool.acquire() as conn:
            await drop_generation(conn, generation)


class _PostgresSwap(Swap):
    def __init__(self, conn: Conn, generation: str) -> None:
        self._conn = conn
        self._generation = check_schema(generation)
        self.store = ConnectionReadModel(conn, generation)

    async def missing(self, before: Comparison | None = None) -> Missing:
        old = await active_schema(self._conn)
        if before is None or before.live != old or before.missing is None:
            return Missing(*await missing_events(self._conn, old, self._generation))
        found = await missing_events(
            self._conn, old, self._generation, since=before.through, candidates=before.missing
        )
        return Missing(*found)

    async def commit_to(self, through: int) -> str:
        old = await active_schema(self._conn)
        # Every partition's projector goes on from where the new generation stands.
        await carry_checkpoints(self._conn, old, self._generation, through)
        number = int(self._generation.removeprefix("cw_rm_"))
        await activate(self._conn, self._generation, number)
        return old


class JetStreamEnd:
    """The end of ``CW_EVENTS`` now, and what the rebuild's own consumer still has to come."""

    def __init__(self, js: JetStreamContext, source: EventSource[Prepared]) -> None:
        self._js = js
        self._source = source

    async def last_seq(self) -> int:
        return await stream_last_seq(self._js)

    async def pending(self) -> int:
        return await self._source.pending()
