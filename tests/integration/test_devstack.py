"""``cw dev``'s stack with real processes: own servers start, answer, stop, leave nothing."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import sys
from pathlib import Path

import asyncpg
import nats
import pytest

from services.devstack.cli import run_services
from services.devstack.stack import DATABASE, LocalStack
from services.devstack.system import LOCALHOST, port_answers
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

ACCOUNT_FILES = [Path("/etc/passwd"), Path("/etc/group"), Path("/etc/shadow")]


def _fingerprint() -> dict[Path, str]:
    return {
        f: hashlib.sha256(f.read_bytes()).hexdigest()
        for f in ACCOUNT_FILES
        if f.exists() and os.access(f, os.R_OK)
    }


def _processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline:
            found.append(int(entry.name))
    return found


def _uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[2])  # effective uid
    raise AssertionError(f"no Uid line for {pid}")


async def test_own_stack_answers_stops_cleanly_and_is_reused(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    accounts_before = _fingerprint()
    stack = LocalStack(project, own=True, durable=False)
    try:
        async with stack:
            assert stack.nats is not None
            assert stack.postgres is not None
            nc = await nats.connect(stack.nats_url)
            try:
                info = await nc.jetstream().account_info()
                assert info.limits is not None
                await nc.publish("cw.devstack.test", b"hello")
                await nc.flush()
            finally:
                await nc.close()

            conn = await asyncpg.connect(stack.database_url)
            try:
                assert await conn.fetchval("select 1") == 1
                assert await conn.fetchval("select current_database()") == DATABASE
            finally:
                await conn.close()

            if os.geteuid() == 0:  # PostgreSQL refuses root: it must run as someone else
                assert stack.postgres.pid is not None
                assert _uid_of(stack.postgres.pid) != 0
            assert stack.postgres.initialised
            ports = [stack.nats.port, stack.nats.monitor_port, stack.postgres.port]
            data_dir = str(stack.postgres.data_dir)
            store = str(stack.nats.store)
            assert all(port_answers(LOCALHOST, p) for p in ports)

        assert not [p for p in ports if port_answers(LOCALHOST, p)]
        assert _processes_mentioning(data_dir) == []
        assert _processes_mentioning(store) == []

        # The next start reuses the cluster (no initdb), its database, and the ports.
        async with LocalStack(project, own=True, durable=False) as again:
            assert again.postgres is not None
            assert again.nats is not None
            assert not again.postgres.initialised
            assert [again.nats.port, again.nats.monitor_port, again.postgres.port] == ports
            conn = await asyncpg.connect(again.database_url)
            try:
                assert await conn.fetchval("select current_database()") == DATABASE
            finally:
                await conn.close()
        assert _processes_mentioning(data_dir) == []
    finally:
        await stack.stop()
        if stack.postgres is not None:  # as root it may live outside tmp_path
            shutil.rmtree(stack.postgres.root, ignore_errors=True)
    assert _fingerprint() == accounts_before


async def test_services_output_is_prefixed_and_first_exit_ends_the_run() -> None:
    lines: list[str] = []
    specs = [
        ("quick", [sys.executable, "-c", "print('one'); print('two'); raise SystemExit(3)"]),
        ("slow", [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"]),
    ]
    env = dict(os.environ)
    code = await asyncio.wait_for(run_services(specs, [env, env], lines.append), 30)
    assert code == 3
    assert "quick | one" in lines
    assert "quick | two" in lines
    assert any("quick exited with code 3" in line for line in lines)


async def test_cancelling_services_stops_them() -> None:
    lines: list[str] = []
    marker = f"cw-devstack-test-{os.getpid()}"
    specs = [("sleeper", [sys.executable, "-c", f"import time; time.sleep(60)  # {marker}"])]
    task = asyncio.create_task(run_services(specs, [dict(os.environ)], lines.append))

    async def started() -> bool:
        return bool(_processes_mentioning(marker))

    await eventually(started, within=5, what="the service's process starts", running=[task])
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert _processes_mentioning(marker) == []


async def test_the_database_fixture_gives_an_empty_database(database_url: str) -> None:
    # Whichever server conftest found or started (CW_TEST_OWN_POSTGRES=1: its own).
    conn = await asyncpg.connect(database_url)
    try:
        tables = await conn.fetchval(
            "select count(*) from information_schema.tables where table_schema = 'public'"
        )
        assert tables == 0
    finally:
        await conn.close()
