"""The alerts and dashboards on a real Prometheus, scraping the real projector, reminders
service and notifier (its target a local fake WeCom robot).

PostgreSQL is cut under the projector's backlog, and CwConsumerStalled fires through
Prometheus's HTTP API; PostgreSQL comes back, the backlog is projected and the alert resolves.
The rules are the shipped ones with durations 30 times shorter. Meanwhile reminders fall due
within seconds (a campaign in seconds), are sent, skipped and cancelled, and reach the robot,
some merged. Then every dashboard query must answer.
"""

from __future__ import annotations

import asyncio
import json
import os
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import nats
import pytest

from contracts import Event, encode_event
from services.devstack.system import free_port
from tests import factories as f
from tests.support import dashboards
from tests.support.notifier import notify_file
from tests.support.processes import ProjectorProcess, cw
from tests.support.prometheus import PrometheusServer
from tests.support.reminders import campaign_file, soon
from tests.support.robots import FakeRobot
from tests.support.tcp_proxy import FaultyProxy, via
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e
FRESH = "320706"
"""The district of the issues whose reminders fall due during the test (the projector's figures
are checked on 320703)."""


@pytest.fixture
async def proxy(database_url: str) -> AsyncIterator[FaultyProxy]:
    parts = urlsplit(database_url)
    p = FaultyProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    await p.start()
    yield p
    await p.stop()


@pytest.fixture
async def env(
    nats_url: str, database_url: str, proxy: FaultyProxy
) -> AsyncIterator[dict[str, str]]:
    role = f"cw_reader_{uuid.uuid4().hex[:8]}"
    yield {
        **os.environ,
        "CW_NATS_URL": nats_url,
        "CW_DATABASE_URL": via(database_url, proxy.port),
        "CW_METRICS_PORT": str(free_port()),
        "CW_PROJECTOR_FETCH_WAIT": "200ms",
        # The dashboards' SQL runs as the read-only role, as Grafana's data source does.
        "CW_READER_ROLE": role,
        "CW_READER_PASSWORD": "dashboards-Pw-1",
    }
    # Roles belong to the whole cluster: drop this test's own.
    admin = await asyncpg.connect(database_url)
    try:
        if await admin.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role):
            await admin.execute(f"DROP OWNED BY {role}")
            await admin.execute(f"DROP ROLE {role}")
    finally:
        await admin.close()


@pytest.fixture
async def robot() -> AsyncIterator[FakeRobot]:
    # Two messages in two seconds: the reminders falling due together exceed the budget and are
    # merged.
    fake = FakeRobot("wecom", per_minute=2, window_s=2.0, throttle_s=2.0)
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
def services(
    env: dict[str, str], database_url: str, robot: FakeRobot, tmp_path: Path
) -> Iterator[dict[str, ProjectorProcess]]:
    """``cw run reminders`` and ``cw run notifier``, straight to PostgreSQL (not through the
    proxy: the cut is the projector's)."""
    target = {"name": "robot", "kind": "wecom", "url": robot.url, "per_minute": 2, "window": "2s"}
    own = {
        **env,
        "CW_DATABASE_URL": database_url,
        "CW_CAMPAIGN_FILE": str(campaign_file(tmp_path)),
        "CW_REMINDERS_METRICS_PORT": str(free_port()),
        "CW_REMINDERS_FETCH_WAIT": "200ms",
        "CW_NOTIFIER_METRICS_PORT": str(free_port()),
        "CW_NOTIFY_FILE": str(notify_file(tmp_path / "notify.toml", [target])),
    }
    started = {
        name: ProjectorProcess(own, tmp_path / f"{name}.log", service=name)
        for name in ("reminders", "notifier")
    }
    yield started
    for p in started.values():
        p.ensure_gone()


@pytest.fixture
def prometheus(
    env: dict[str, str], services: dict[str, ProjectorProcess], tmp_path: Path
) -> Iterator[PrometheusServer]:
    server = PrometheusServer(
        tmp_path / "prometheus",
        {
            "cw-projector": f"127.0.0.1:{env['CW_METRICS_PORT']}",
            "cw-reminders": f"127.0.0.1:{services['reminders'].env['CW_REMINDERS_METRICS_PORT']}",
            "cw-notifier": f"127.0.0.1:{services['notifier'].env['CW_NOTIFIER_METRICS_PORT']}",
        },
    )
    server.start()
    yield server
    server.stop()


def _health(env: dict[str, str]) -> tuple[int, dict[str, object]]:
    url = f"http://127.0.0.1:{env['CW_METRICS_PORT']}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


async def _health_is(env: dict[str, str], code: int, status: str) -> bool:
    got = await asyncio.to_thread(_health, env)
    return got[0] == code and got[1]["status"] == status


async def _firing(prometheus: PrometheusServer, name: str) -> bool:
    alerts = await asyncio.to_thread(prometheus.alerts)
    return any(a["labels"]["alertname"] == name and a["state"] == "firing" for a in alerts)


async def _value(prometheus: PrometheusServer, expr: str) -> float | None:
    result = await asyncio.to_thread(prometheus.query, expr)
    return float(result[0]["value"][1]) if result else None


async def test_a_stalled_projector_fires_the_alert_and_recovers(
    env: dict[str, str],
    database_url: str,
    proxy: FaultyProxy,
    projector: ProjectorProcess,
    prometheus: PrometheusServer,
    *,
    services: dict[str, ProjectorProcess],
    robot: FakeRobot,
) -> None:
    # In a thread: the proxy between cw and PostgreSQL runs on this test's event loop.
    assert (await asyncio.to_thread(cw, env, "init")).returncode == 0
    projector.start()
    for service in services.values():
        service.start()
    start = f.at("2023-03-01 09:00")
    nc = await nats.connect(env["CW_NATS_URL"])
    js = nc.jetstream()
    try:
        await js.publish(*_wire(f.venue("LY-FM-001", start)))
        # An issue past its deadline and one closed, so that every panel has figures to show.
        await js.publish(*_wire(f.issue("LY-FM-001", "D1", start)))
        await js.publish(*_wire(f.due("LY-FM-001", "D1", start, start + timedelta(days=3))))
        await js.publish(*_wire(f.issue("LY-FM-001", "D2", start)))
        await js.publish(*_wire(f.recheck_passed("LY-FM-001", "D2", start + timedelta(days=1))))
        # One bad message, so that the dead-letter panels have a series to show.
        await js.publish("cw.events.320703.LY-FM-001.IssueFound", b"{not json")
        for i in range(20):
            await js.publish(*_wire(f.issue("LY-FM-001", f"I{i}", start + timedelta(minutes=i))))
        for event in _falling_due_now():
            await js.publish(*_wire(event))

        async def scraped_and_projected() -> bool:
            return await _value(prometheus, 'sum(cw_issues{district="320703"})') == 22

        await eventually(
            scraped_and_projected,
            within=60,
            what=lambda: "Prometheus sees the 22 issues\n" + prometheus.log_tail(),
        )
        assert not await _firing(prometheus, "CwConsumerStalled")
        assert await _health_is(env, 200, "ok")

        await proxy.cut()
        for i in range(20, 520):
            await js.publish(*_wire(f.issue("LY-FM-001", f"I{i}", start + timedelta(minutes=i))))

        async def stalled() -> bool:
            return await _firing(prometheus, "CwConsumerStalled")

        await eventually(
            stalled, within=90, what=lambda: "CwConsumerStalled fires\n" + projector.tail()
        )
        code, said = await asyncio.to_thread(_health, env)
        assert (code, said["status"]) == (503, "stalled"), said
        assert said["lag_events"] and "PostgreSQL" in str(said["reason"]), said

        await proxy.restore()

        async def recovered() -> bool:
            projected = await _value(prometheus, 'sum(cw_issues{district="320703"})') == 522
            return projected and not await _firing(prometheus, "CwConsumerStalled")

        await eventually(
            lambda: _health_is(env, 200, "ok"), within=60, what="/healthz says ok again"
        )
        await eventually(
            recovered,
            within=90,
            what=lambda: "the backlog is projected and the alert resolves\n" + projector.tail(),
        )
        await _every_dashboard_query_answers(prometheus, env, database_url)
        assert robot.accepted(), "the robot got the reminders"
    finally:
        await nc.close()
    db = await asyncpg.connect(database_url)
    try:
        assert (
            await db.fetchval("SELECT count(*) FROM issue_status WHERE district = '320703'") == 522
        )
        # Nothing of the backlog was skipped while the write lock was taken again.
        audit = await asyncio.to_thread(cw, env, "audit")
        assert audit.returncode == 0, audit.stdout + audit.stderr
    finally:
        await db.close()
    # In a thread, like cw init: closing its connections goes through the proxy.
    assert await asyncio.to_thread(projector.stop) == 0
    for name, service in services.items():
        assert service.stop() == 0, f"{name}\n{service.tail()}"


def _wire(event: Event) -> tuple[str, bytes]:
    return event.subject, encode_event(event)


def _falling_due_now() -> list[Event]:
    """Issues whose reminders fall due within seconds (campaign in seconds): reminders sent, one
    skipped (its due_soon moment passed before it was scheduled), some cancelled (a recheck
    passed)."""
    found, venue = soon(-60), "LY-FM-900"
    events = [f.venue(venue, found, district=FRESH)]
    for n in range(3):
        events += [f.issue(venue, f"R{n}", found, district=FRESH),
                   f.due(venue, f"R{n}", found, soon(4 + n), district=FRESH)]  # fmt: skip
    events += [
        f.issue(venue, "R9", found, district=FRESH),
        f.due(venue, "R9", found, soon(2), district=FRESH),
        f.recheck_passed(venue, "R9", soon(0), district=FRESH),
    ]
    return events


async def _every_dashboard_query_answers(
    prometheus: PrometheusServer, env: dict[str, str], database_url: str
) -> None:
    """Every PromQL expression of the dashboards returns a series on this Prometheus, and every
    SQL query runs as the read-only role: a renamed metric or view breaks the build."""
    empty: list[str] = []

    async def every_expression_has_a_series() -> bool:
        # A counter born during the outage needs two scrapes before rate() or increase() see it.
        empty[:] = [
            f"{where}: {expr}"
            for where, expr in dashboards.promql()
            if not await asyncio.to_thread(prometheus.query, expr)
        ]
        return not empty

    await eventually(
        every_expression_has_a_series,
        within=30,
        what=lambda: f"dashboard queries without a series: {empty}",
    )
    parts = urlsplit(database_url)
    as_reader = urlunsplit(
        parts._replace(
            netloc=f"{env['CW_READER_ROLE']}:{env['CW_READER_PASSWORD']}@{parts.hostname}:{parts.port}"
        )
    )
    conn = await asyncpg.connect(as_reader)
    try:
        for where, sql in dashboards.sql():
            rows = await conn.fetch(sql)
            assert rows, f"{where}: no rows"
    finally:
        await conn.close()
