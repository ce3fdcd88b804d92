"""The projector's composition root: connections, adapters and the loop are built here only."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from functools import partial
from typing import TypeVar

import asyncpg
import nats
from nats.aio.client import Client

from services.common.campaign import Campaign, load_campaign
from services.common.connect import connect_command, connect_service
from services.common.migrations import migrate
from services.common.retry import RetryPolicy, retry
from services.common.settings import Settings
from services.consumer.jetstream import (
    DeadLetterPublisher,
    EventSource,
    NatsConnection,
)
from services.projector import usecases
from services.projector.adapters import audit as audit_adapter
from services.projector.adapters import postgres
from services.projector.adapters.metrics import ProjectorMetrics
from services.projector.adapters.rebuilds import JetStreamEnd, PostgresGenerations
from services.projector.domain.audit import AuditReport, AuditUnavailable
from services.projector.domain.model import VenueAsOf
from services.projector.domain.ports import ReadModelStore
from services.projector.runner import Projector, decode_delivery

log = logging.getLogger("cw.projector")
T = TypeVar("T")


async def _until_up(what: str, connect: Callable[[], Awaitable[T]]) -> T:
    """Wait for a server that is not up yet (a service started before its servers)."""
    return await retry(f"{what} not reachable", connect, policy=RetryPolicy(first_s=0.2))


async def connect_nats(settings: Settings, name: str) -> Client:
    return await connect_service(settings.nats_url, name=name)


async def create_pool(settings: Settings) -> asyncpg.Pool:
    # min_size=0: the pool is created even while PostgreSQL is down; batches then retry.
    pool = await asyncpg.create_pool(
        settings.database_url, min_size=0, max_size=4, command_timeout=60
    )
    assert pool is not None
    return pool


async def ensure_read_model(settings: Settings) -> list[str]:
    """``cw init``'s database part: migrations, then the first generation and the views."""
    conn = await asyncpg.connect(settings.database_url)
    try:
        report = await migrate(conn)
        report.append(await postgres.ensure_read_model(conn))
    finally:
        await conn.close()
    return report


@contextlib.asynccontextmanager
async def projector_parts(
    settings: Settings,
) -> AsyncIterator[tuple[Client, asyncpg.Pool, Campaign]]:
    campaign = load_campaign(settings.campaign_file)
    nc = await connect_nats(settings, "cw-projector")
    pool = await create_pool(settings)
    try:
        yield nc, pool, campaign
    finally:
        await pool.close()
        if not nc.is_closed:
            await nc.drain()


def build_projector(
    settings: Settings,
    nc: Client,
    pool: asyncpg.Pool,
    campaign: Campaign,
    metrics: ProjectorMetrics,
    *,
    writer: postgres.SingleWriter | None = None,
) -> Projector:
    conn = NatsConnection(nc, reopen=lambda: connect_nats(settings, "cw-projector"))
    source = EventSource(
        conn,
        settings.projector_durable,
        partial(decode_delivery, campaign=campaign),
        batch=settings.projector_batch,
        ack_wait_s=settings.projector_ack_wait.total_seconds(),
        pull_bytes=settings.projector_pull_bytes,
        subjects=settings.projector_partition,
    )
    return Projector(
        source,
        postgres.PostgresReadModel(pool, writer=writer, partition=settings.projector_partition),
        campaign,
        metrics,
        dead_letters=DeadLetterPublisher(conn, "projector"),
        writer=writer,
        fetch_wait=settings.projector_fetch_wait,
    )


async def run_projector(settings: Settings, metrics: ProjectorMetrics, stop: asyncio.Event) -> None:
    """Run until ``stop`` is set; finishes the batch in hand first."""
    async with projector_parts(settings) as (nc, pool, campaign):
        guard = postgres.SingleWriter(settings.database_url, settings.projector_durable)
        await _until_up("PostgreSQL", guard.acquire)
        projector = build_projector(settings, nc, pool, campaign, metrics, writer=guard)
        watcher = asyncio.create_task(_watch_lag(projector, metrics))
        auditor = asyncio.create_task(_audit_periodically(settings, nc, pool, metrics))
        stopper = asyncio.create_task(_stop_when(stop, projector))
        try:
            await projector.run()
        finally:
            watcher.cancel()
            auditor.cancel()
            stopper.cancel()
            await guard.release()


async def _stop_when(stop: asyncio.Event, projector: Projector) -> None:
    await stop.wait()
    projector.stopping.set()


async def _watch_lag(projector: Projector, metrics: ProjectorMetrics) -> None:
    source = projector.source
    assert isinstance(source, EventSource)
    while True:
        await asyncio.sleep(5)
        with contextlib.suppress(Exception):
            metrics.lag.set(await source.pending())


async def _audit_periodically(
    settings: Settings, nc: Client, pool: asyncpg.Pool, metrics: ProjectorMetrics
) -> None:
    """Every ``CW_AUDIT_EVERY``, account for the last ``CW_AUDIT_WINDOW`` sequences; never
    stops the projector (a failure is logged and counted). ``CW_AUDIT_EVERY=0`` turns it off."""
    every = settings.audit_every.total_seconds()
    while every > 0:
        await asyncio.sleep(every)
        try:
            async with pool.acquire() as conn:
                report = await audit_adapter.audit_read_model(
                    nc, conn, window=settings.audit_window
                )
        except Exception:
            log.warning("periodic audit failed", exc_info=True)
            metrics.audits.labels("failed").inc()
            continue
        metrics.unaccounted.set(len(report.unaccounted))
        metrics.audit_checked_through.set(report.checkpoint)
        metrics.audits.labels("clean" if report.clean else "unaccounted").inc()
        for r in report.ranges()[:10]:
            log.error("audit: stream sequence %s (%s messages): %s", r.seqs, r.count, r.reason)


async def audit(settings: Settings, since: int = 1) -> AuditReport:
    """``cw audit``: account for every message of ``CW_EVENTS`` from ``since`` up to the
    projector's checkpoint. Raises ``AuditUnavailable`` when it cannot read what it needs."""
    try:
        nc = await connect_command(settings.nats_url, name="cw-audit")
        try:
            conn = await asyncpg.connect(settings.database_url, timeout=10)
            try:
                return await audit_adapter.audit_read_model(nc, conn, since=since)
            finally:
                await conn.close()
        finally:
            await nc.close()
    except (LookupError, OSError, asyncpg.PostgresError, nats.errors.Error) as exc:
        raise AuditUnavailable(f"{type(exc).__name__}: {exc}") from exc


async def rebuild(settings: Settings, metrics: ProjectorMetrics) -> list[str]:
    """``cw rebuild``: wire the use case (``usecases.rebuild``) to PostgreSQL and JetStream."""
    async with projector_parts(settings) as (nc, pool, campaign):
        source = EventSource(
            nc, None, partial(decode_delivery, campaign=campaign), batch=settings.projector_batch
        )

        async def build(store: ReadModelStore) -> Projector:
            builder = Projector(
                source, store, campaign, metrics,
                dead_letters=None, fetch_wait=settings.projector_fetch_wait,
            )  # fmt: skip
            await source.start(0)
            return builder

        return await usecases.rebuild(
            PostgresGenerations(pool),
            build,
            JetStreamEnd(nc.jetstream(), source),
            wait_s=min(settings.projector_fetch_wait.total_seconds(), 0.5),
        )


async def venue_as_of(settings: Settings, venue_id: str, as_of: datetime) -> list[VenueAsOf]:
    """``cw venue``: the venue id's archived events (in every district), read here, replayed by
    the use case."""
    campaign = load_campaign(settings.campaign_file)
    conn = await asyncpg.connect(settings.database_url)
    try:
        history = await postgres.venue_history(conn, venue_id, None)
    finally:
        await conn.close()
    return usecases.venue_as_of(history, as_of, campaign.rebound_window)
