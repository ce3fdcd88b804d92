"""The alerts and dashboards on a real Prometheus, scraping the real projector.

PostgreSQL is cut under a backlog, and CwConsumerStalled fires through Prometheus's HTTP API;
PostgreSQL comes back, the backlog is projected and the alert resolves. The rules are the
shipped ones with durations 30 times shorter. Then every dashboard query must answer.
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
from tests.support.processes import ProjectorProcess, cw
from tests.support.prometheus import PrometheusServer
from tests.support.tcp_proxy import FaultyProxy
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e


def _via(url: str, port: int) -> str:
    parts = urlsplit(url)
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{port}"))


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
        "CW_DATABASE_URL": _via(database_url, proxy.port),
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
def projector(env: dict[str, str], tmp_path: Path) -> Iterator[ProjectorProcess]:
    p = ProjectorProcess(env, tmp_path / "projector.log")
    yield p
    p.ensure_gone()


@pytest.fixture
def prometheus(env: dict[str, str], tmp_path: Path) -> Iterator[PrometheusServer]:
    server = PrometheusServer(
        tmp_path / "prometheus", {"cw-projector": f"127.0.0.1:{env['CW_METRICS_PORT']}"}
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
) -> None:
    # In a thread: the proxy between cw and PostgreSQL runs on this test's event loop.
    assert (await asyncio.to_thread(cw, env, "init")).returncode == 0
    projector.start()
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
    finally:
        await nc.close()
    db = await asyncpg.connect(database_url)
    try:
        assert await db.fetchval("SELECT count(*) FROM issue_status") == 522
        # Nothing of the backlog was skipped while the write lock was taken again.
        audit = await asyncio.to_thread(cw, env, "audit")
        assert audit.returncode == 0, audit.stdout + audit.stderr
    finally:
        await db.close()
    # In a thread, like cw init: closing its connections goes through the proxy.
    assert await asyncio.to_thread(projector.stop) == 0


def _wire(event: Event) -> tuple[str, bytes]:
    return event.subject, encode_event(event)


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
