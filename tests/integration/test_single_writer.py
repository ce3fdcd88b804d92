"""One projector writes at a time; a second one waits as a hot standby."""

from __future__ import annotations

import asyncio

import pytest

from services.projector.adapters.postgres import SingleWriter

pytestmark = pytest.mark.integration


async def test_a_second_projector_waits_until_the_first_lets_go(database_url: str) -> None:
    first, second = SingleWriter(database_url, "projector"), SingleWriter(database_url, "projector")
    other = SingleWriter(database_url, "projector-p2")
    await first.acquire()
    standby = asyncio.create_task(second.acquire())
    await other.acquire()  # another durable (a partition) is not held back
    done, _ = await asyncio.wait({standby}, timeout=0.5)
    assert not done, "the standby took the lock while the first projector held it"
    await first.release()
    await asyncio.wait_for(standby, 10)
    await second.release()
    await other.release()


async def test_the_lock_is_taken_again_after_its_connection_drops(database_url: str) -> None:
    writer = SingleWriter(database_url, "projector")
    await writer.acquire()
    assert writer._conn is not None
    await writer._conn.close()  # as when PostgreSQL restarts
    await writer.ensure()
    rival = SingleWriter(database_url, "projector")
    standby = asyncio.create_task(rival.acquire())
    done, _ = await asyncio.wait({standby}, timeout=0.5)
    assert not done
    await writer.release()
    await asyncio.wait_for(standby, 10)
    await rival.release()
