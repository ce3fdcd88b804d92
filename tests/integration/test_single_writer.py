"""One projector writes at a time; a second one waits as a hot standby."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from services.common.settings import Settings
from services.consumer.lease import SingleWriter
from services.projector.adapters.read_model import PostgresReadModel
from services.projector.bootstrap import ensure_read_model
from services.projector.domain.ports import Fenced
from tests.support.nothing_lost import WRITE_LOCKS
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


@pytest.fixture
async def initialised(database_url: str) -> str:
    await ensure_read_model(Settings(database_url=database_url))
    return database_url


async def waits_for_the_lock(database_url: str, standby: asyncio.Task[None]) -> None:
    """Wait until PostgreSQL shows ``standby`` waiting for a write lock; it must not have it."""
    conn = await asyncpg.connect(database_url)
    try:

        async def waiting() -> bool:
            return any(not r["granted"] for r in await conn.fetch(WRITE_LOCKS))

        await eventually(
            waiting, within=10, what="the standby waits for the write lock", running=[standby]
        )
    finally:
        await conn.close()
    assert not standby.done(), "the standby took the lock while the first projector held it"


async def test_a_second_projector_waits_until_the_first_lets_go(initialised: str) -> None:
    database_url = initialised
    first, second = SingleWriter(database_url, "projector"), SingleWriter(database_url, "projector")
    other = SingleWriter(database_url, "projector-p2")
    await first.acquire()
    standby = asyncio.create_task(second.acquire())
    await other.acquire()  # another durable (a partition) is not held back
    await waits_for_the_lock(database_url, standby)
    await first.release()
    await asyncio.wait_for(standby, 10)
    await second.release()
    await other.release()


async def test_the_lock_is_taken_again_after_its_connection_drops(initialised: str) -> None:
    database_url = initialised
    writer = SingleWriter(database_url, "projector")
    await writer.acquire()
    assert writer._conn is not None
    await writer._conn.close()  # as when PostgreSQL restarts
    await writer.ensure()
    assert writer.epoch == 2
    rival = SingleWriter(database_url, "projector")
    standby = asyncio.create_task(rival.acquire())
    await waits_for_the_lock(database_url, standby)
    await writer.release()
    await asyncio.wait_for(standby, 10)
    await rival.release()


async def test_a_projector_whose_lock_passed_to_a_standby_cannot_commit(
    initialised: str,
) -> None:
    database_url = initialised
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    assert pool is not None
    first = SingleWriter(database_url, "projector")
    await first.acquire()
    store = PostgresReadModel(pool, writer=first)
    assert await store.checkpoint() == 0
    assert first._conn is not None
    await first._conn.close()  # only the lock's connection drops ...
    standby = SingleWriter(database_url, "projector")
    await standby.acquire()  # ... and the standby takes over
    with pytest.raises(Fenced, match="another projector took over"):
        async with store.unit() as unit:
            await unit.set_checkpoint(99)
    taken_over = PostgresReadModel(pool, writer=standby)
    assert await taken_over.checkpoint() == 0
    await standby.release()
    await pool.close()
