"""/healthz of a projector that waits as the hot standby, and of the one that writes."""

from __future__ import annotations

import asyncio
import json
import os
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from services.devstack.system import free_port
from tests.support.processes import ProjectorProcess, cw
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e


def _health(port: int) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())
    except OSError:
        return 0, {}


async def test_the_standby_says_standby_and_stops_at_once(
    nats_url: str, database_url: str, tmp_path: Path
) -> None:
    base = {**os.environ, "CW_NATS_URL": nats_url, "CW_DATABASE_URL": database_url}
    assert cw(base, "init").returncode == 0
    ports = free_port(), free_port()
    first, second = (
        ProjectorProcess({**base, "CW_METRICS_PORT": str(port)}, tmp_path / f"p{port}.log")
        for port in ports
    )
    try:
        first.start()

        async def says(port: int, code: int, status: str) -> bool:
            got = await asyncio.to_thread(_health, port)
            return got[0] == code and got[1].get("status") == status

        await eventually(lambda: says(ports[0], 200, "ok"), within=60, what="the writer is ok")
        second.start()
        await eventually(
            lambda: says(ports[1], 200, "standby"), within=60, what="the second is the standby"
        )
        # A standby waits on the lock in PostgreSQL; SIGTERM must still end it cleanly.
        assert second.stop() == 0
        assert first.stop() == 0
    finally:
        first.ensure_gone()
        second.ensure_gone()
