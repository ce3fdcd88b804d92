"""``cw run``: a metrics port that is taken is said in one line naming the setting; SIGTERM or
SIGINT stops a service with exit status 0 whatever it is waiting for."""

from __future__ import annotations

import asyncio
import signal
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import nats
import pytest

from contracts import Event, encode_event
from services.devstack.system import free_port
from tests import factories as f
from tests.support.processes import ProjectorProcess, cw, cw_env
from tests.support.tcp_proxy import FaultyProxy, via
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e


def test_a_taken_metrics_port_names_cw_metrics_port(nats_url: str, database_url: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = cw(cw_env(nats_url, database_url, metrics_port=str(port)), "run", "projector")
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1, done.stderr
    assert f"127.0.0.1:{port} is taken" in errors[0]
    assert "set CW_METRICS_PORT to a free port" in errors[0]
    assert "Traceback" not in done.stderr


def test_cw_run_lists_the_registered_services(nats_url: str, database_url: str) -> None:
    done = cw(cw_env(nats_url, database_url), "run", "nothing-of-that-name")
    assert done.returncode == 2
    assert "(choose from 'projector', 'reminders', 'notifier')" in done.stderr


async def _published(nats_url: str, *events: Event) -> None:
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        for event in events:
            await js.publish(event.subject, encode_event(event))
    finally:
        await nc.close()


def _said(process: ProjectorProcess, text: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return text in await asyncio.to_thread(process.tail)

    return check


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_a_service_stopped_while_it_retries_its_database_exits_0(
    sig: signal.Signals, nats_url: str, database_url: str, tmp_path: Path
) -> None:
    done = cw(cw_env(nats_url, database_url), "init")
    assert done.returncode == 0, done.stderr
    parts = urlsplit(database_url)
    proxy = FaultyProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    await proxy.start()
    log = tmp_path / "projector.log"
    env = cw_env(
        nats_url, via(database_url, proxy.port), metrics_port="0", projector_fetch_wait="200ms"
    )
    projector = ProjectorProcess(env, log)
    db = await asyncpg.connect(database_url)
    try:
        projector.start()
        t0 = f.at("2023-03-15 10:00")
        await _published(nats_url, f.venue("LY-FM-001", t0))

        async def projected() -> bool:
            return bool(await db.fetchval("SELECT count(*) FROM public.event_archive"))

        await eventually(projected, within=60, what=projector.tail)
        await proxy.cut()
        await _published(nats_url, f.inspection("LY-FM-001", t0))
        await eventually(_said(projector, "database failed"), within=60, what=projector.tail)
        assert projector.proc is not None
        projector.proc.send_signal(sig)
        assert projector.proc.wait(30) == 0, projector.tail()
        assert "Traceback" not in projector.log.read_text(), projector.tail()
    finally:
        projector.ensure_gone()
        await db.close()
        await proxy.stop()


async def test_a_service_stopped_while_it_waits_for_nats_exits_0(
    database_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "projector.log"
    nowhere = f"nats://127.0.0.1:{free_port()}"  # nothing listens there
    projector = ProjectorProcess(cw_env(nowhere, database_url, metrics_port="0"), log)
    try:
        projector.start()
        await eventually(_said(projector, "not reachable"), within=60, what=projector.tail)
        assert projector.stop() == 0, projector.tail()
        assert "Traceback" not in projector.log.read_text(), projector.tail()
    finally:
        projector.ensure_gone()
