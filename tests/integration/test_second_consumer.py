"""A second consumer of ``CW_EVENTS``, wired from the consumer kit in a few dozen lines, runs
beside the projector with its own durable, write lease and checkpoint."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import partial

import asyncpg
import nats
import pytest
from nats.aio.client import Client

from services.common.campaign import load_campaign
from services.common.settings import Settings
from services.consumer.jetstream import DeadLetterPublisher, EventSource
from services.consumer.lease import SingleWriter
from services.consumer.letter_key import DeadLetterKey
from services.consumer.loop import Consumer
from services.consumer.model import Outcome, StreamEvent, Tracked
from services.consumer.ports import CheckpointRegression
from services.projector.adapters.postgres import PostgresReadModel
from services.projector.runner import decode_delivery
from tests import factories as f
from tests.integration.conftest import Harness
from tests.support.nothing_lost import projector_in_process
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

TALLY_TABLES = """
CREATE TABLE tally (district text PRIMARY KEY, events integer NOT NULL);
CREATE TABLE tally_checkpoint (
    consumer text PRIMARY KEY, stream_seq bigint NOT NULL, message_id text
);
"""


class DistrictTally(Consumer[int]):
    """Counts events per district: the whole of a consumer's own logic."""

    def __init__(self, pool: asyncpg.Pool, nc: Client, dsn: str) -> None:
        decode = partial(decode_delivery, campaign=load_campaign())
        super().__init__(
            EventSource(nc, "tally", decode, batch=50),
            NoMetrics(),
            dead_letters=DeadLetterPublisher(nc, "tally", DeadLetterKey(pool)),
            writer=SingleWriter(dsn, "tally"),
        )
        self.pool = pool

    async def tracked(self) -> Tracked:
        row = await self.pool.fetchrow("SELECT stream_seq, message_id FROM tally_checkpoint")
        return Tracked(0) if row is None else Tracked(int(row[0]), row[1])

    async def apply(
        self, events: Sequence[StreamEvent], through: Tracked, outcomes: Sequence[Outcome]
    ) -> int:
        through_seq = through.seq
        async with self.pool.acquire() as conn, conn.transaction():
            done = int(await conn.fetchval(
                "SELECT stream_seq FROM tally_checkpoint WHERE consumer = 'tally' FOR UPDATE"
            ) or 0)  # fmt: skip
            if through_seq < done:
                raise CheckpointRegression(f"tally would move back to {through_seq}")
            fresh = [e.event.district for e in events if e.seq > done]
            await conn.executemany(
                "INSERT INTO tally VALUES ($1, 1) "
                "ON CONFLICT (district) DO UPDATE SET events = tally.events + 1",
                [(d,) for d in fresh],
            )
            await conn.execute(
                "INSERT INTO tally_checkpoint VALUES ('tally', $1, $2) ON CONFLICT (consumer) "
                "DO UPDATE SET stream_seq = EXCLUDED.stream_seq, message_id = EXCLUDED.message_id",
                through_seq,
                through.message_id,
            )
            return len(fresh)

    def merge(self, first: int, second: int) -> int:
        return first + second


class NoMetrics:
    def batch_done(self, outcome: int, size: int, seconds: float) -> None: ...
    def retried(self, stage: str) -> None: ...
    def dead_lettered(self, kind: str) -> None: ...
    def consumer_restarted(self, reason: str) -> None: ...


@asynccontextmanager
async def tally_running(settings: Settings, pool: asyncpg.Pool) -> AsyncIterator[DistrictTally]:
    nc = await nats.connect(settings.nats_url)
    tally = DistrictTally(pool, nc, settings.database_url)
    assert tally.writer is not None
    await tally.writer.ensure()
    task = asyncio.create_task(tally.run())
    try:
        yield tally
    finally:
        tally.stopping.set()
        await asyncio.wait_for(task, 30)
        assert isinstance(tally.writer, SingleWriter)
        await tally.writer.release()
        await nc.close()


async def test_a_second_consumer_keeps_its_own_checkpoint_beside_the_projector(
    harness: Harness,
) -> None:
    await harness.db.execute(TALLY_TABLES)
    pool = await asyncpg.create_pool(harness.settings.database_url, min_size=1, max_size=4)
    assert pool is not None
    projector_store = PostgresReadModel(pool)
    first = [f.issue("V1", f"I{i}", f.at("2023-03-01 10:00")) for i in range(30)]
    first += [
        f.issue("V2", f"J{i}", f.at("2023-03-01 10:00"), district="320706") for i in range(10)
    ]
    try:
        await harness.publish(first)
        async with (
            projector_in_process(harness.settings) as projector,
            tally_running(harness.settings, pool) as tally,
        ):

            async def both_done() -> bool:
                return (await projector_store.checkpoint(), await tally.checkpoint()) == (40, 40)

            await eventually(both_done, within=30, what="both consumers at 40", running=[projector])
        counts = {r["district"]: r["events"] for r in await pool.fetch("SELECT * FROM tally")}
        assert counts == {f.DISTRICT: 30, "320706": 10}

        # The tally is stopped; the projector goes on alone, the tally's checkpoint stays.
        await harness.publish([f.issue("V1", f"K{i}", f.at("2023-03-02 10:00")) for i in range(5)])
        async with projector_in_process(harness.settings) as projector:

            async def projector_done() -> bool:
                return await projector_store.checkpoint() == 45

            await eventually(projector_done, within=30, what="projector at 45", running=[projector])
        assert await pool.fetchval("SELECT stream_seq FROM tally_checkpoint") == 40

        # Started again, the tally resumes from its own checkpoint and counts nothing twice.
        async with tally_running(harness.settings, pool) as tally:

            async def tally_done() -> bool:
                return await tally.checkpoint() == 45

            await eventually(tally_done, within=30, what="tally at 45")
            with pytest.raises(CheckpointRegression):
                await tally.apply([], Tracked(44), [])
        counts = {r["district"]: r["events"] for r in await pool.fetch("SELECT * FROM tally")}
        assert counts == {f.DISTRICT: 35, "320706": 10}
    finally:
        await pool.close()
