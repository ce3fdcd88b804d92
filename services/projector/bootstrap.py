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

from contracts.wire import EVENTS_STREAM
from services.common.campaign import Campaign, load_campaign
from services.common.connect import (
    NatsAccess,
    Unreachable,
    connect_command,
    connect_postgres_command,
    connect_service,
    failure_text,
    mask_url,
)
from services.common.migrations import migrate
from services.common.retry import RetryPolicy, retry
from services.common.runtime import unless_stopped
from services.common.services_role import (
    NotTheServicesRole,
    ServicesRole,
    acting_as_services_role,
    check_services_role,
)
from services.common.settings import Settings
from services.consumer.health import Health
from services.consumer.jetstream import (
    DeadLetterPublisher,
    EventSource,
    NatsConnection,
    dead_letters_per_stage,
)
from services.consumer.letter_key import DeadLetterKey
from services.consumer.watch import watch
from services.projector import usecases
from services.projector.adapters import audit as audit_adapter
from services.projector.adapters import postgres, read_model
from services.projector.adapters.gauges import DomainGauges, WaitingGauges
from services.projector.adapters.generations import record_campaign_phases
from services.projector.adapters.metrics import ProjectorMetrics
from services.projector.adapters.reader_role import PUBLIC_VIEWS, ensure_reader_role
from services.projector.adapters.rebuild_progress import RebuildProgress
from services.projector.adapters.rebuilds import (
    JetStreamEnd,
    PostgresGenerations,
    events_stream_exists,
    read_model_initialised,
)
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
    return await connect_service(NatsAccess.from_settings(settings), name=name)


async def create_pool(settings: Settings, role: ServicesRole | None = None) -> asyncpg.Pool:
    """``role``: its sessions act as the services' role (``cw rebuild``, whose generation must
    be the services'); ``None``: as ``CW_DATABASE_URL``'s user."""
    # min_size=0: the pool is created even while PostgreSQL is down; batches then retry.
    pool = await asyncpg.create_pool(
        settings.database_url,
        min_size=0,
        max_size=4,
        command_timeout=60,
        server_settings=role.server_settings if role is not None else None,
    )
    assert pool is not None
    return pool


async def ensure_read_model(settings: Settings) -> list[str]:
    """``cw init``'s database part: migrations, then the first generation and the views, as the
    services' role; then the read-only role, as whoever connects (it may manage roles)."""
    conn = await asyncpg.connect(settings.database_url)
    try:
        async with acting_as_services_role(conn):
            report = await migrate(conn)
            report.append(await postgres.ensure_read_model(conn))
            campaign = load_campaign(settings.campaign_file)
            report.append(await record_campaign_phases(conn, campaign))
        password = settings.reader_password
        report.append(
            await ensure_reader_role(
                conn, settings.reader_role, password.get_secret_value() if password else None
            )
        )
    finally:
        await conn.close()
    return report


@contextlib.asynccontextmanager
async def projector_parts(
    settings: Settings, role: ServicesRole | None = None
) -> AsyncIterator[tuple[Client, asyncpg.Pool, Campaign]]:
    campaign = load_campaign(settings.campaign_file)
    nc = await connect_nats(settings, "cw-projector")
    pool = await create_pool(settings, role)
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
        dead_letters=DeadLetterPublisher(conn, "projector", DeadLetterKey(pool)),
        writer=writer,
        fetch_wait=settings.projector_fetch_wait,
    )


async def run_projector(
    settings: Settings,
    metrics: ProjectorMetrics,
    stop: asyncio.Event,
    health: Health | None = None,
) -> None:
    """Run until ``stop`` is set; finishes the batch in hand first. ``health`` (``/healthz``)
    says ``standby`` while another projector holds the write lock."""
    health = health or Health()
    async with projector_parts(settings) as (nc, pool, campaign):
        guard = postgres.SingleWriter(settings.database_url, settings.projector_durable)
        projector = build_projector(settings, nc, pool, campaign, metrics, writer=guard)
        projector.health = health
        source = projector.source
        assert isinstance(source, EventSource)

        async def pending() -> int:
            # A standby has no consumer of its own to ask.
            return 0 if health.standby else await source.pending()

        watcher = asyncio.create_task(
            watch(
                health,
                pending=pending,
                oldest_waiting=source.oldest_waiting,
                database=lambda: pool.fetchval("SELECT 1"),
                on_observed=metrics.observed,
            )
        )
        try:
            if not await unless_stopped(_until_up("PostgreSQL", guard.acquire), stop):
                return  # stopped while waiting as the standby
            health.writing()
            # Only now, holding the lock: a standby serves no domain gauges, so sums never double.
            gauges = DomainGauges(
                pool, asyncio.get_running_loop(), serving=guard.holds,
                checklist=[i.code for i in campaign.names.checklist],
            )  # fmt: skip
            metrics.registry.register(gauges)
            waiting = WaitingGauges(
                pool,
                asyncio.get_running_loop(),
                serving=guard.holds,
                alert_after=campaign.waiting_alert_after,
            )
            metrics.registry.register(waiting)
            rebuilds = RebuildProgress(pool, asyncio.get_running_loop(), serving=guard.holds)
            metrics.registry.register(rebuilds)
            auditor = asyncio.create_task(_audit_periodically(settings, nc, pool, metrics))
            counter = asyncio.create_task(_count_dead_letters(nc, metrics))
            stopper = asyncio.create_task(_stop_when(stop, projector))
            try:
                await projector.run()
            finally:
                auditor.cancel()
                counter.cancel()
                stopper.cancel()
                metrics.registry.unregister(gauges)
                metrics.registry.unregister(waiting)
                metrics.registry.unregister(rebuilds)
                await guard.release()
        finally:
            watcher.cancel()


async def _count_dead_letters(nc: Client, metrics: ProjectorMetrics, every_s: float = 15) -> None:
    """``cw_dead_letters{stage}``: what CW_DEAD_LETTERS keeps, per stage, from the stream."""
    seen: set[str] = set()
    while True:
        with contextlib.suppress(Exception):
            counts = await dead_letters_per_stage(nc.jetstream())
            for stage in seen - counts.keys():
                metrics.dead_letters_kept.labels(stage).set(0)
            for stage, count in counts.items():
                metrics.dead_letters_kept.labels(stage).set(count)
            seen |= counts.keys()
        await asyncio.sleep(every_s)


async def _stop_when(stop: asyncio.Event, projector: Projector) -> None:
    await stop.wait()
    projector.stopping.set()


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
        if report.replaced is not None:
            log.error("audit: %s", report.replaced)
        metrics.unaccounted.set(len(report.unaccounted))
        metrics.audit_checked_through.set(report.checkpoint)
        metrics.audits.labels("clean" if report.clean else "unaccounted").inc()
        for r in report.ranges()[:10]:
            log.error("audit: stream sequence %s (%s messages): %s", r.seqs, r.count, r.reason)


async def audit(settings: Settings, since: int = 1) -> AuditReport:
    """``cw audit``: account for every message of ``CW_EVENTS`` from ``since`` up to the
    projector's checkpoint. Raises ``AuditUnavailable`` when it cannot read what it needs."""
    try:
        nc = await connect_command(NatsAccess.from_settings(settings), name="cw-audit")
        try:
            conn = await connect_postgres_command(settings.database_url)
            try:
                return await audit_adapter.audit_read_model(nc, conn, since=since)
            finally:
                await conn.close()
        finally:
            await nc.close()
    except (Unreachable, LookupError) as exc:
        raise AuditUnavailable(str(exc)) from exc
    except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError) as exc:
        raise AuditUnavailable(f"{exc}: run `cw init` first") from exc
    except (OSError, asyncpg.PostgresError, nats.errors.Error) as exc:
        raise AuditUnavailable(f"{type(exc).__name__}: {exc}") from exc


class RebuildUnavailable(RuntimeError):
    """``cw rebuild`` cannot start: a server is away or nothing is initialised (said in one
    line)."""


async def _rebuild_preflight(settings: Settings) -> ServicesRole:
    """Fail within seconds, in one line, where a long-running service would wait; and before
    anything changes when the new generation could not be the services' role's. The role the
    rebuild acts as."""
    try:
        nc = await connect_command(NatsAccess.from_settings(settings), name="cw-rebuild")
        try:
            stream_there = await events_stream_exists(nc.jetstream())
        finally:
            await nc.close()
        conn = await connect_postgres_command(settings.database_url)
        try:
            role = await check_services_role(conn, PUBLIC_VIEWS)
            initialised = await read_model_initialised(conn)
        finally:
            await conn.close()
    except (Unreachable, NotTheServicesRole) as exc:
        raise RebuildUnavailable(str(exc)) from None
    if not stream_there:
        raise RebuildUnavailable(f"stream {EVENTS_STREAM} does not exist: run `cw init` first")
    if not initialised:
        # Checked before a generation is created, so that nothing is left half made.
        raise RebuildUnavailable("the read model does not exist: run `cw init` first")
    return role


async def rebuild(
    settings: Settings,
    metrics: ProjectorMetrics,
    progress: usecases.Progress | None = None,
    *,
    accept_loss: bool = False,
) -> list[str]:
    """``cw rebuild``: wire the use case (``usecases.rebuild``) to PostgreSQL and JetStream,
    acting as the services' role. Raises ``RebuildUnavailable`` when it cannot start, or when
    PostgreSQL refuses or fails it (in one line); ``usecases.WouldLoseEvents`` when the new
    generation lacks events of the live one (unless ``accept_loss``)."""
    role = await _rebuild_preflight(settings)
    try:
        return await _rebuild(settings, metrics, progress, role, accept_loss)
    except LookupError as exc:  # says "run `cw init` first" itself
        raise RebuildUnavailable(str(exc)) from exc
    except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError) as exc:
        raise RebuildUnavailable(f"{exc}: run `cw init` first") from exc
    except asyncpg.InsufficientPrivilegeError as exc:
        raise RebuildUnavailable(
            f"PostgreSQL refused {role.name}, the services' role: {failure_text(exc)}; "
            f"cw db setup (as an administrator) gives {role.name} what it needs"
        ) from exc
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
        raise RebuildUnavailable(
            f"PostgreSQL at {mask_url(settings.database_url)} failed: {failure_text(exc)}"
        ) from exc


async def _rebuild(
    settings: Settings,
    metrics: ProjectorMetrics,
    progress: usecases.Progress | None,
    role: ServicesRole,
    accept_loss: bool,
) -> list[str]:
    async with projector_parts(settings, role) as (nc, pool, campaign):
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
            progress=progress,
            wait_s=min(settings.projector_fetch_wait.total_seconds(), 0.5),
            accept_loss=accept_loss,
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


async def venue_named(
    settings: Settings, text: str, district: str | None, as_of: datetime
) -> tuple[list[VenueAsOf], list[tuple[str, str, str]]]:
    """``cw venue TEXT`` when no venue has the id ``TEXT``: the registered venues whose name (or
    id) holds it, as (district, venue_id, name); the one venue replayed when exactly one does."""
    campaign = load_campaign(settings.campaign_file)
    conn = await asyncpg.connect(settings.database_url)
    try:
        matches = await read_model.find_venues(conn, text, district)
        if len(matches) != 1:
            return [], matches
        found_district, venue_id, _ = matches[0]
        history = await postgres.venue_history(conn, venue_id, found_district)
    finally:
        await conn.close()
    return usecases.venue_as_of(history, as_of, campaign.rebound_window), matches
