"""The notifier's composition root: the notify file, connections, adapters and loops are
built here only."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tomllib
from collections.abc import Awaitable, Callable
from typing import TypeVar
from zoneinfo import ZoneInfo

import aiohttp
import asyncpg
from nats.aio.client import Client

from contracts.wire import REMINDERS_STREAM
from services.common.campaign import load_campaign
from services.common.connect import NatsAccess, connect_service, mask_webhook_url
from services.common.durations import format_duration
from services.common.retry import RetryPolicy, retry
from services.common.runtime import unless_stopped
from services.common.services_role import acting_as_services_role
from services.common.settings import Settings
from services.consumer.health import Health
from services.consumer.jetstream import DeadLetterPublisher, EventSource, NatsConnection
from services.consumer.lease import SingleWriter
from services.consumer.letter_key import DeadLetterKey
from services.consumer.watch import watch
from services.notifier.adapters.deadletters import STAGE, RefusalsToDeadLetters
from services.notifier.adapters.dingtalk import DingTalkRobot
from services.notifier.adapters.http import new_session
from services.notifier.adapters.metrics import NotifierMetrics
from services.notifier.adapters.postgres import PostgresLedger, ensure_schema
from services.notifier.adapters.webhook import WebhookTarget
from services.notifier.adapters.wecom import WeComRobot
from services.notifier.domain.targets import NotifyFileInvalid, Target, parse_targets
from services.notifier.runner import (
    AlertInbox,
    Dispatcher,
    Intake,
    Retrying,
    SystemClock,
    decode_reminder,
)
from services.notifier.service import Dispatch

log = logging.getLogger("cw.notifier")
T = TypeVar("T")
INTAKE_BATCH = 500
WATCH_EVERY_S = 5.0


def load_targets(settings: Settings) -> tuple[Target, ...]:
    """The targets of ``CW_NOTIFY_FILE``; ``NotifyFileInvalid`` says what is wrong, and where."""
    path = settings.notify_file
    if path is None:
        raise NotifyFileInvalid("CW_NOTIFY_FILE is not set: the notifier has no targets")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise NotifyFileInvalid(f"CW_NOTIFY_FILE {path}: cannot read it ({exc.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise NotifyFileInvalid(f"CW_NOTIFY_FILE {path}: not valid TOML ({exc})") from None
    try:
        targets = parse_targets(data, os.environ)
    except NotifyFileInvalid as exc:
        raise NotifyFileInvalid(f"CW_NOTIFY_FILE {path}: {exc}") from None
    if not targets:
        raise NotifyFileInvalid(f"CW_NOTIFY_FILE {path}: no [[targets]]")
    return targets


def describe(target: Target) -> str:
    """A target for the log: never its token."""
    limit = (
        f"{target.per_minute} per {format_duration(target.window)}"
        if target.per_minute
        else "no rate limit"
    )
    filters = []
    if target.districts:
        filters.append("districts " + ",".join(sorted(target.districts)))
    if target.kinds:
        filters.append("kinds " + ",".join(sorted(target.kinds)))
    signed = ", signed" if target.secret else ""
    return (
        f"target {target.name} ({target.kind}{signed}, {mask_webhook_url(target.url)}): {limit}"
        + (f"; {'; '.join(filters)}" if filters else "; every reminder")
    )


async def ensure_ledger(settings: Settings) -> list[str]:
    """``cw init``'s part: the ``cw_notifier`` schema, as the services' role."""
    conn = await asyncpg.connect(settings.database_url)
    try:
        async with acting_as_services_role(conn):
            return await ensure_schema(conn)
    finally:
        await conn.close()


async def _until_up(what: str, connect: Callable[[], Awaitable[T]]) -> T:
    return await retry(f"{what} not reachable", connect, policy=RetryPolicy(first_s=0.2))


async def _watch_waiting(
    ledger: PostgresLedger, targets: tuple[Target, ...], metrics: NotifierMetrics
) -> None:
    """The backlog per target kind, every few seconds; once, at start, deliveries left for
    targets no longer in the notify file (they are not sent, and say so)."""
    names = {t.name for t in targets}
    first = True
    while True:
        try:
            waiting = await ledger.waiting()
        except Exception:  # the dispatchers see and retry a database that is away
            log.debug("could not count the waiting deliveries", exc_info=True)
        else:
            totals = dict.fromkeys(("dingtalk", "wecom", "webhook"), 0)
            for name, kind, n in waiting:
                if name in names:
                    totals[kind] = totals.get(kind, 0) + n
                elif first:
                    log.warning("%s deliveries wait for target %s, which is no longer in the "
                                "notify file: they are not sent", n, name)  # fmt: skip
            for kind, n in totals.items():
                metrics.waiting.labels(kind).set(n)
            first = False
        await asyncio.sleep(WATCH_EVERY_S)


def build_dispatch(
    target: Target,
    session: aiohttp.ClientSession,
    retrying: Retrying,
    metrics: NotifierMetrics,
    zone: ZoneInfo | None = None,
) -> Dispatch:
    d = Dispatch(target, retrying, retrying, SystemClock(), metrics)
    if zone is not None:
        d.zone = zone
    if target.kind == "dingtalk":
        d.robot = DingTalkRobot(session, target.url, target.secret)
    elif target.kind == "wecom":
        d.robot = WeComRobot(session, target.url)
    else:
        d.webhook = WebhookTarget(session, target.url)
    return d


async def run_notifier(
    settings: Settings,
    metrics: NotifierMetrics,
    stop: asyncio.Event,
    health: Health | None = None,
    alerts: AlertInbox | None = None,
) -> None:
    """Run until ``stop`` is set; each loop finishes the message in hand first. ``health``
    (``/healthz``) follows the intake: ``standby`` until the write lock is taken. ``alerts``
    (``POST /alerts``) reaches the dispatchers once the write lock is taken."""
    health = health or Health()
    targets = load_targets(settings)
    zone = load_campaign(settings.campaign_file).timezone
    for target in targets:
        log.info("%s", describe(target))

    async def connect() -> Client:
        return await connect_service(NatsAccess.from_settings(settings), name="cw-notifier")

    nc = await connect()
    # min_size=0: the pool is created even while PostgreSQL is down; work then retries.
    pool = await asyncpg.create_pool(
        settings.database_url, min_size=0, max_size=4, command_timeout=60
    )
    assert pool is not None
    guard = SingleWriter(settings.database_url, settings.notifier_durable)
    session = new_session()
    stopping = asyncio.Event()
    try:
        if not await unless_stopped(_until_up("PostgreSQL", guard.acquire), stop):
            return  # stopped while waiting as the standby
        health.writing()
        conn = NatsConnection(nc, reopen=connect)
        publisher = DeadLetterPublisher(conn, STAGE, DeadLetterKey(pool))
        ledger = PostgresLedger(pool, settings.notifier_durable, guard)
        retrying = Retrying(
            ledger, RefusalsToDeadLetters(publisher), metrics.retried, stopping.is_set
        )
        dispatchers = [
            Dispatcher(build_dispatch(t, session, retrying, metrics, zone), stopping)
            for t in targets
        ]
        if alerts is not None:
            alerts.attach(dispatchers)

        def wake() -> None:
            for dispatcher in dispatchers:
                dispatcher.wake.set()

        source = EventSource(
            conn,
            settings.notifier_durable,
            decode_reminder,
            batch=INTAKE_BATCH,
            stream=REMINDERS_STREAM,
        )
        intake = Intake(
            source, ledger, targets, metrics, dead_letters=publisher, writer=guard,
            on_recorded=wake,
        )  # fmt: skip
        intake.health = health

        async def stop_when_asked() -> None:
            await stop.wait()
            stopping.set()
            intake.stopping.set()

        tasks = [
            asyncio.create_task(intake.run(), name="intake"),
            *(
                asyncio.create_task(d.run(), name=f"target {d.dispatch.target.name}")
                for d in dispatchers
            ),
        ]
        stopper = asyncio.create_task(stop_when_asked())
        watcher = asyncio.create_task(_watch_waiting(ledger, targets, metrics))
        health_watcher = asyncio.create_task(
            watch(
                health,
                pending=source.pending,
                oldest_waiting=source.oldest_waiting,
                database=lambda: pool.fetchval("SELECT 1"),
                on_observed=metrics.observed,
            )
        )
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        finally:
            stopping.set()
            intake.stopping.set()
            stopper.cancel()
            watcher.cancel()
            health_watcher.cancel()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, stopper, watcher, health_watcher, return_exceptions=True)
    finally:
        if alerts is not None:
            alerts.detach()
        await session.close()
        await guard.release()
        await pool.close()
        if not nc.is_closed:
            with contextlib.suppress(Exception):
                await nc.drain()
