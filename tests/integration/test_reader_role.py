"""The read-only role: it reads the public views and nothing else, also after ``cw rebuild``.

Each test logs in as the role over a real connection and tries what a careless or hostile reader
would: the tables behind the views, the bookkeeping schema, writes, DDL, temporary tables.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from pydantic import SecretStr

from services.common.entrypoints import initialise
from services.common.settings import Settings
from services.projector.adapters.metrics import ProjectorMetrics
from services.projector.adapters.reader_role import PUBLIC_VIEWS
from services.projector.bootstrap import rebuild
from tests.factories import at, issue, venue
from tests.integration.conftest import Harness

pytestmark = pytest.mark.integration

PASSWORD = "reader-Pw-1"


def _as(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    netloc = f"{user}:{password}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


@pytest.fixture
async def reader(settings: Settings) -> AsyncIterator[Settings]:
    """Settings with a role name of this test's own (roles are shared by the whole cluster)."""
    role = f"cw_reader_{uuid.uuid4().hex[:8]}"
    yield settings.model_copy(update={"reader_role": role, "reader_password": SecretStr(PASSWORD)})
    admin = await asyncpg.connect(settings.database_url)
    try:
        if await admin.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role):
            await admin.execute(f"DROP OWNED BY {role}")
            await admin.execute(f"DROP ROLE {role}")
    finally:
        await admin.close()


async def _refused(conn: asyncpg.Connection, sql: str) -> str:
    with pytest.raises(asyncpg.PostgresError) as refused:
        await conn.execute(sql)
    return type(refused.value).__name__


async def test_the_reader_reads_the_views_and_nothing_behind_them(reader: Settings) -> None:
    report = await initialise(reader)
    assert f"read-only role {reader.reader_role}: created" in "\n".join(report)
    conn = await asyncpg.connect(_as(reader.database_url, reader.reader_role, PASSWORD))
    try:
        for view in PUBLIC_VIEWS:
            assert await conn.fetchval(f"SELECT count(*) FROM public.{view}") == 0
        refused = {
            sql: await _refused(conn, sql)
            for sql in (
                "SELECT * FROM cw_rm_1.issues",
                "SELECT * FROM cw.read_model_head",
                "SELECT * FROM cw.dead_letter_actions",
                "SELECT * FROM cw.dead_letter_key",  # the key that seals the services' ids
                "INSERT INTO public.venues (district, venue_id) VALUES ('320703', 'X')",
                "DELETE FROM public.issue_status",
                "CREATE TABLE public.mine (x int)",
                "CREATE TEMPORARY TABLE mine (x int)",
                "CREATE SCHEMA mine",
                "DROP VIEW public.venues",
            )
        }
    finally:
        await conn.close()
    # Every refusal is PostgreSQL's, not a typo of ours: a missing right or a read-only session.
    assert set(refused.values()) <= {
        "InsufficientPrivilegeError",
        "ReadOnlySQLTransactionError",
    }, refused


async def test_after_a_rebuild_the_reader_reads_the_new_generation_only(
    reader: Settings, harness: Harness
) -> None:
    await initialise(reader)
    when = at("2023-03-01 09:00")
    await harness.publish([venue("LY-FM-001", when), issue("LY-FM-001", "I-1", when)])
    await harness.project()
    await rebuild(harness.settings, ProjectorMetrics())
    assert await harness.db.fetchval("SELECT active_schema FROM cw.read_model_head") == "cw_rm_2"
    conn = await asyncpg.connect(_as(reader.database_url, reader.reader_role, PASSWORD))
    try:
        assert await conn.fetchval("SELECT count(*) FROM public.issue_status") == 1
        assert await conn.fetchval("SELECT name FROM public.venues") is not None
        assert await _refused(conn, "SELECT * FROM cw_rm_2.issues") == (
            "InsufficientPrivilegeError"
        )
    finally:
        await conn.close()


async def test_without_a_password_there_is_no_role(settings: Settings) -> None:
    role = f"cw_reader_{uuid.uuid4().hex[:8]}"
    report = await initialise(settings.model_copy(update={"reader_role": role}))
    assert f"read-only role {role}: not created (set CW_READER_PASSWORD to create it)" in report
    conn = await asyncpg.connect(settings.database_url)
    try:
        assert await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role) is None
    finally:
        await conn.close()
