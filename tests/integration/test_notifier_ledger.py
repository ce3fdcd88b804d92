"""The notifier's ledger in PostgreSQL: the shared suite, and the write lease."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from services.common.settings import Settings
from services.consumer.lease import SingleWriter
from services.consumer.ports import Fenced
from services.notifier.adapters.postgres import PENDING, PostgresLedger
from services.notifier.bootstrap import ensure_ledger
from tests.ledger_suite import T0, TARGETS, LedgerSuite, stream

pytestmark = pytest.mark.integration


class TestPostgresLedger(LedgerSuite):
    @pytest.fixture(autouse=True)
    async def _ledger(self, database_url: str) -> AsyncIterator[None]:
        await ensure_ledger(Settings(database_url=database_url))
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
        assert pool is not None
        self.ledger = PostgresLedger(pool, "notifier", None)
        yield
        await pool.close()


async def test_cw_init_twice_says_the_ledger_exists(database_url: str) -> None:
    settings = Settings(database_url=database_url)
    assert "notifier ledger (cw_notifier): created" in await ensure_ledger(settings)
    assert "notifier ledger (cw_notifier): exists" in await ensure_ledger(settings)


async def test_a_notifier_whose_lease_was_taken_over_records_nothing(database_url: str) -> None:
    await ensure_ledger(Settings(database_url=database_url))
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    assert pool is not None
    first, second = SingleWriter(database_url, "notifier"), SingleWriter(database_url, "notifier")
    try:
        await first.acquire()
        ledger = PostgresLedger(pool, "notifier", first)
        await ledger.record(stream(1), TARGETS, 1)
        await first.release()  # its lock's connection is gone: a standby takes over
        await second.acquire()
        ids = [stream(1)[0].reminder.reminder_id]
        with pytest.raises(Fenced):
            await ledger.begin("robot", ids, T0)
        with pytest.raises(Fenced):
            await ledger.record(stream(2), TARGETS, 2)
        assert await ledger.checkpoint() == 1
    finally:
        await first.release()
        await second.release()
        await pool.close()


async def test_waiting_deliveries_are_counted_per_target(database_url: str) -> None:
    await ensure_ledger(Settings(database_url=database_url))
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    assert pool is not None
    try:
        ledger = PostgresLedger(pool, "notifier", None)
        await ledger.record(stream(1, 2), TARGETS, 2)
        assert sorted(await ledger.waiting()) == [("hook", "webhook", 2), ("robot", "dingtalk", 2)]
    finally:
        await pool.close()


async def test_a_targets_next_deliveries_are_read_without_sorting_its_backlog(
    database_url: str,
) -> None:
    """PENDING reads the first rows of an index in its order: the time to find the next
    delivery does not grow with the backlog (it did: a sort of every pending delivery)."""
    await ensure_ledger(Settings(database_url=database_url))
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    assert pool is not None
    try:
        ledger = PostgresLedger(pool, "notifier", None)
        await ledger.record(stream(*range(1, 3001)), TARGETS, 3000)
        async with pool.acquire() as conn:
            await conn.execute("ANALYZE cw_notifier.deliveries, cw_notifier.reminders")
            plan = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {PENDING}", "hook", 1)
    finally:
        await pool.close()
    assert '"Sort"' not in plan, plan
    assert "deliveries_next" in plan, plan
