"""Helpers for tests that run the projector against the run's NATS and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

import asyncpg
import nats
import pytest
from nats.aio.client import Client

from contracts import Event, encode_event
from services.common.entrypoints import initialise
from services.common.settings import Settings
from services.common.streams import EVENTS_STREAM, ensure_streams, stream_plans
from services.projector.adapters.metrics import ProjectorMetrics
from services.projector.bootstrap import build_projector, projector_parts
from services.projector.runner import Projector
from tests.support.waiting import eventually


@dataclass
class Harness:
    settings: Settings
    nc: Client
    db: asyncpg.Connection

    async def publish(self, events: Iterable[Event], *, msg_id: bool = True) -> None:
        js = self.nc.jetstream()
        for ev in events:
            headers = {"Nats-Msg-Id": str(ev.event_id)} if msg_id else None
            await js.publish(ev.subject, encode_event(ev), headers=headers)

    async def publish_raw(self, subject: str, payload: bytes) -> None:
        await self.nc.jetstream().publish(subject, payload)

    async def last_seq(self) -> int:
        info = await self.nc.jetstream().stream_info(EVENTS_STREAM)
        return int(info.state.last_seq)

    async def project(self, metrics: ProjectorMetrics | None = None, within: float = 60) -> int:
        """Run the real projector until everything published so far is committed; stop it."""
        target = await self.last_seq()
        async with projector_parts(self.settings) as (nc, pool, campaign):
            projector = build_projector(
                self.settings, nc, pool, campaign, metrics or ProjectorMetrics()
            )
            task = asyncio.create_task(projector.run())
            try:
                await wait_for_checkpoint(projector, target, within, task)
            finally:
                projector.stopping.set()
                await asyncio.wait_for(task, 30)
        return target

    async def rows(self, sql: str, *args: object) -> list[dict[str, object]]:
        return [dict(r) for r in await self.db.fetch(sql, *args)]


async def wait_for_checkpoint(
    projector: Projector, target: int, within: float, task: asyncio.Task[None] | None = None
) -> None:
    async def reached() -> bool:
        return await projector.store.checkpoint() >= target

    await eventually(
        reached,
        within=within,
        what=f"projector reaches sequence {target}",
        running=[task] if task is not None else (),
    )


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[Client]:
    """A connection to the run's NATS, with the streams created."""
    conn = await nats.connect(nats_url)
    await ensure_streams(conn.jetstream(), stream_plans())
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def harness(settings: Settings) -> AsyncIterator[Harness]:
    settings = settings.model_copy(update={"projector_fetch_wait": _short()})
    await initialise(settings)
    nc = await nats.connect(settings.nats_url)
    db = await asyncpg.connect(settings.database_url)
    try:
        yield Harness(settings, nc, db)
    finally:
        await db.close()
        await nc.close()


def _short() -> object:
    from datetime import timedelta  # noqa: PLC0415

    return timedelta(milliseconds=200)


async def audits_clean(settings: Settings) -> None:
    """``cw audit``'s check: every message up to the checkpoint is accounted for."""
    from services.projector.bootstrap import audit  # noqa: PLC0415

    report = await audit(settings)
    assert report.clean, f"cw audit: unaccounted {report.unaccounted}"
