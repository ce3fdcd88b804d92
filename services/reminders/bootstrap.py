"""The reminders service's composition root: connections, adapters and the loops, wired here."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from functools import partial

import asyncpg
from nats.js.errors import NotFoundError

from services.common.campaign import load_campaign
from services.common.connect import NatsAccess, connect_service
from services.common.migrations import migrate
from services.common.retry import RetryPolicy, retry
from services.common.runtime import unless_stopped
from services.common.services_role import acting_as_services_role
from services.common.settings import Settings
from services.consumer.decoding import decode_delivery
from services.consumer.health import Health
from services.consumer.jetstream import EventSource, NatsConnection, stream_last_seq
from services.consumer.lease import SingleWriter
from services.consumer.watch import watch
from services.reminders.adapters.jetstream import JetStreamPublisher
from services.reminders.adapters.metrics import ReminderMetrics
from services.reminders.adapters.postgres import PostgresReminders
from services.reminders.domain.ports import Clock
from services.reminders.runner import CaughtUp, Dispatcher, ReminderConsumer

log = logging.getLogger("cw.reminders")


def system_clock() -> datetime:
    return datetime.now(UTC)


async def ensure_reminders(settings: Settings) -> list[str]:
    """``cw init``'s part: the migrations (``cw_reminders``: timers, outbox, checkpoint), as the
    services' role."""
    conn = await asyncpg.connect(settings.database_url)
    try:
        async with acting_as_services_role(conn):
            done = await migrate(conn)
        return [*done, "reminders: timers and outbox ready (schema cw_reminders)"]
    finally:
        await conn.close()


async def run_reminders(
    settings: Settings,
    metrics: ReminderMetrics,
    stop: asyncio.Event,
    *,
    clock: Clock = system_clock,
    health: Health | None = None,
) -> None:
    """Run until ``stop`` is set: a standby until it holds the write lease, then the consumer
    and the dispatcher side by side; either failing (``Fenced``) stops both. ``health``
    (``/healthz``) follows the consumer."""
    health = health or Health()
    campaign = load_campaign(settings.campaign_file)
    name = "cw-reminders"
    nc = await connect_service(NatsAccess.from_settings(settings), name=name)
    pool = await asyncpg.create_pool(
        settings.database_url, min_size=0, max_size=4, command_timeout=60
    )
    assert pool is not None
    writer = SingleWriter(settings.database_url, settings.reminders_durable)
    tasks: list[asyncio.Task[None]] = []
    try:
        acquired = retry(
            "PostgreSQL not reachable", writer.acquire, policy=RetryPolicy(first_s=0.2)
        )
        if not await unless_stopped(acquired, stop):
            return  # stopped while waiting as the standby
        health.writing()
        conn = NatsConnection(
            nc, reopen=lambda: connect_service(NatsAccess.from_settings(settings), name=name)
        )
        js = nc.jetstream()
        try:
            target = await stream_last_seq(js)
        except NotFoundError:
            target = 0
        caught_up = CaughtUp(target)
        wakeup = asyncio.Event()
        store = PostgresReminders(pool, writer)
        source = EventSource(
            conn,
            settings.reminders_durable,
            partial(decode_delivery, campaign=campaign),
            batch=settings.reminders_batch,
            ack_wait_s=60.0,
        )
        consumer = ReminderConsumer(
            source, store, campaign, metrics,
            clock=clock, wakeup=wakeup, caught_up=caught_up, writer=writer,
            fetch_wait=settings.reminders_fetch_wait,
        )  # fmt: skip
        consumer.health = health
        dispatcher = Dispatcher(
            store, JetStreamPublisher(conn), campaign, metrics,
            clock=clock, wakeup=wakeup, caught_up=caught_up,
            duplicate_window=settings.reminders_duplicate_window,
        )  # fmt: skip
        tasks = [
            asyncio.create_task(consumer.run(), name="reminders-consumer"),
            asyncio.create_task(dispatcher.run(), name="reminders-dispatcher"),
        ]
        pending_watch = asyncio.create_task(dispatcher.watch_pending())
        health_watch = asyncio.create_task(
            watch(
                health,
                pending=source.pending,
                oldest_waiting=source.oldest_waiting,
                database=lambda: pool.fetchval("SELECT 1"),
                on_observed=metrics.observed,
            )
        )
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
        consumer.stopping.set()
        dispatcher.stop()
        pending_watch.cancel()
        health_watch.cancel()
        stopper.cancel()
        await asyncio.wait(tasks, timeout=30)
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    finally:
        for task in tasks:
            task.cancel()
        await writer.release()
        await pool.close()
        if not nc.is_closed:
            await nc.drain()
