"""Regression test: a projector that gets the write lock back after a standby took over (and
died) loses nothing. The standby runs as ``cw run projector`` in a process of its own, and is
killed with ``kill -9`` in the middle of a backlog."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import timedelta
from pathlib import Path

import asyncpg
import nats
import pytest
from nats.aio.client import Client

from services.common.entrypoints import initialise
from services.common.settings import Settings
from services.projector.domain.ports import Fenced
from tests import factories as f
from tests.integration.conftest import audits_clean
from tests.support.nothing_lost import (
    WRITE_LOCKS,
    Checkpoint,
    archived,
    last_seq,
    projector_in_process,
    publish_pipelined,
)
from tests.support.processes import ProjectorProcess
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e
N = 12_000
A_BATCH = 100
B_BATCH = 500


# The write lock: the session-level advisory lock a projector holds (or waits for) on its own
# connection; the per-batch shared advisory locks of the read model are ShareLock.
@pytest.fixture
def standby(nats_url: str, database_url: str, tmp_path: Path) -> Iterator[ProjectorProcess]:
    env = {
        **os.environ,
        "CW_NATS_URL": nats_url,
        "CW_DATABASE_URL": database_url,
        "CW_METRICS_PORT": "0",
        "CW_PROJECTOR_FETCH_WAIT": "200ms",
        "CW_PROJECTOR_BATCH": str(B_BATCH),
    }
    p = ProjectorProcess(env, tmp_path / "standby.log")
    yield p
    p.ensure_gone()


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[Client]:
    conn = await nats.connect(nats_url)
    yield conn
    await conn.close()


@pytest.fixture
async def admin(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url)
    yield conn
    await conn.close()


async def test_a_projector_that_gets_the_write_lock_back_loses_nothing(
    settings: Settings,
    nc: Client,
    admin: asyncpg.Connection,
    standby: ProjectorProcess,
) -> None:
    """What the test forces, in order:

    1. projector A (in this process, batch 100) is the writer and is working through a backlog of
       12,000 events; projector B (``cw run projector``, batch 500) waits for the write lock;
    2. A's lock connection is terminated (``pg_terminate_backend``). A lease-row gate (a
       ``FOR SHARE`` lock on ``cw.projector_leases`` held by the test) keeps B from bumping the
       epoch until A has noticed and is waiting for the lock again (visible in ``pg_locks``), so A
       is a standby inside its batch loop, not fenced at its next commit;
    3. the gate opens: B takes over, re-creates the consumer at the checkpoint and projects;
    4. once B's checkpoint is 2,000 past the takeover (beyond anything A had buffered), B is
       killed with ``kill -9``, with messages delivered to it and not acknowledged;
    5. A gets the lock back. It must either re-point at the checkpoint, or stop as fenced (exit
       status 75), in which case the test restarts a projector, as a supervisor would.
    Then every published event must be in the archive, exactly once.
    """
    settings = settings.model_copy(
        update={"projector_batch": A_BATCH, "projector_fetch_wait": timedelta(milliseconds=200)}
    )
    await initialise(settings)
    start = f.at("2023-03-01 09:00")
    events = [f.issue(f"V{i % 97}", f"I{i}", start + timedelta(seconds=i)) for i in range(N)]

    async def write_locks() -> list[asyncpg.Record]:
        return list(await admin.fetch(WRITE_LOCKS))

    async with Checkpoint.of(settings.database_url) as checkpoint:
        restarted = False
        async with projector_in_process(settings) as a:
            await eventually(
                lambda: _granted(write_locks), within=30, what="A holds the write lock"
            )
            [a_lock] = [r["pid"] for r in await write_locks() if r["granted"]]
            standby.start()

            async def b_waits() -> bool:
                assert standby.proc is not None and standby.proc.poll() is None, standby.tail()
                return any(not r["granted"] for r in await write_locks())

            await eventually(b_waits, within=30, what="B waits for the write lock")
            [b_lock] = [r["pid"] for r in await write_locks() if not r["granted"]]

            target = await publish_pipelined(nc, events)
            assert target == N
            await eventually(lambda: _past(checkpoint, 2000), within=60, what="A is projecting")

            gate = await asyncpg.connect(settings.database_url)
            try:
                tx = gate.transaction()
                await tx.start()
                await gate.execute(
                    "SELECT epoch FROM cw.projector_leases WHERE durable = $1 FOR SHARE",
                    settings.projector_durable,
                )
                assert await admin.fetchval("SELECT pg_terminate_backend($1)", a_lock)

                async def a_waits_again() -> bool:
                    return any(
                        not r["granted"] and r["pid"] not in (a_lock, b_lock)
                        for r in await write_locks()
                    )

                # Best effort: if A never waits (say, a fixed projector exits at once), go on.
                with contextlib.suppress(AssertionError):
                    await eventually(a_waits_again, within=10, what="A waits for the lock again")
                await tx.rollback()
            finally:
                await gate.close()

            takeover = await checkpoint.value()
            assert takeover < N, "the backlog was drained before the takeover: make it larger"
            await eventually(
                lambda: _past(checkpoint, takeover + 2000),
                within=60,
                what="B projects after the takeover",
            )
            standby.kill()
            killed_at = await checkpoint.value()
            assert killed_at < N, "B drained the backlog before the kill: make it larger"

            reached = await checkpoint.reaches(N, within=60, watching=a)
            if reached < N and a.done() and isinstance(a.exception(), Fenced):
                restarted = True  # A exited with status 75: a supervisor restarts it
            elif a.done():
                a.result()
        if restarted:
            async with projector_in_process(settings) as again:
                reached = await checkpoint.reaches(N, within=60, running=[again])

    found = await archived(admin)
    assert found.rows == N, (
        f"{N - found.rows} of {N} events missing from the archive (checkpoint {reached} of "
        f"{await last_seq(nc)}; takeover at {takeover}, B killed at {killed_at}"
        f"{', A restarted after status 75' if restarted else ''})"
    )
    assert found.distinct_event_ids == N
    assert reached == N
    await audits_clean(settings)


async def _granted(write_locks: Callable[[], Awaitable[list[asyncpg.Record]]]) -> bool:
    return any(r["granted"] for r in await write_locks())


async def _past(checkpoint: Checkpoint, seq: int) -> bool:
    return await checkpoint.value() >= seq
