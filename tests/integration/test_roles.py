"""PostgreSQL least privilege, tested as each role over real connections.

``cw db setup`` (as the administrator) makes a service role and a read-only role of this test's
own (roles are cluster-wide: unique names, dropped afterwards). Then ``cw init``, the projector,
the reminders service, the notifier and ``cw rebuild`` run as the service role, which may do
nothing an administrator may; the read-only role reads the public views only, also after a
rebuild.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import nats
import pytest
from pydantic import SecretStr

from services.common.database_roles import SetupRefused
from services.common.entrypoints import initialise, setup
from services.common.services_role import SYSTEM_SCHEMAS
from services.common.settings import Settings
from services.projector.adapters.metrics import ProjectorMetrics
from services.projector.adapters.reader_role import PUBLIC_VIEWS
from services.projector.bootstrap import rebuild
from tests import factories as f
from tests.integration.conftest import Harness
from tests.support.nothing_lost import projector_in_process
from tests.support.notifier import notifier_in_process, notify_file
from tests.support.processes import cw, cw_env
from tests.support.reminders import campaign_file, published, reminders_in_process, soon
from tests.support.robots import FakeWebhook
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

SERVICE_PASSWORD = "service-Pw-1"
READER_PASSWORD = "reader-Pw-1"
REFUSED = {"InsufficientPrivilegeError", "ReadOnlySQLTransactionError"}


def _as(url: str, user: str, password: str, database: str | None = None) -> str:
    parts = urlsplit(url)
    netloc = f"{user}:{password}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    path = parts.path if database is None else f"/{database}"
    return urlunsplit(parts._replace(netloc=netloc, path=path))


@pytest.fixture
async def roles(settings: Settings, tmp_path: Path) -> AsyncIterator[Settings]:
    """Settings as the service role, after ``cw db setup`` made it and the reader; the
    administrator's URL is the test database's (a superuser's)."""
    suffix = uuid.uuid4().hex[:8]
    service, reader = f"cw_service_{suffix}", f"cw_reader_{suffix}"
    admin_url = settings.database_url
    as_service = settings.model_copy(
        update={
            "database_url": _as(admin_url, service, SERVICE_PASSWORD),
            "admin_database_url": admin_url,
            "reader_role": reader,
            "reader_password": SecretStr(READER_PASSWORD),
            "campaign_file": campaign_file(tmp_path),
        }
    )
    try:
        yield as_service
    finally:
        admin = await asyncpg.connect(admin_url)
        try:
            for role in (service, reader):
                if await admin.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role):
                    await admin.execute(f"DROP OWNED BY {role}")
                    await admin.execute(f"DROP ROLE {role}")
        finally:
            await admin.close()


def _role(settings: Settings) -> str:
    return urlsplit(settings.database_url).username or ""


async def _refused(conn: asyncpg.Connection, sql: str) -> str:
    with pytest.raises(asyncpg.PostgresError) as refused:
        await conn.execute(sql)
    return type(refused.value).__name__


async def test_the_service_role_may_nothing_an_administrator_may(
    roles: Settings, postgres_admin_url: str
) -> None:
    report = "\n".join(await setup(roles))
    role = _role(roles)
    assert f"role {role}: created with CW_DATABASE_URL's password" in report
    assert SERVICE_PASSWORD not in report and READER_PASSWORD not in report
    admin = await asyncpg.connect(roles.admin_database_url or "")
    other_db = f"cw_test_other_{uuid.uuid4().hex[:8]}"
    await admin.execute(f'CREATE DATABASE "{other_db}"')
    try:
        attributes = await admin.fetchrow(
            "SELECT rolcanlogin, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, "
            "rolreplication FROM pg_roles WHERE rolname = $1",
            role,
        )
        assert attributes is not None
        assert dict(attributes) == {
            "rolcanlogin": True, "rolsuper": False, "rolcreaterole": False,
            "rolcreatedb": False, "rolbypassrls": False, "rolreplication": False,
        }  # fmt: skip
        # A schema in its own database that it does not own.
        await admin.execute("CREATE SCHEMA someone_elses")
        await admin.execute("CREATE TABLE someone_elses.t (x int)")
        await admin.execute("CREATE TABLE public.someone_elses_table (x int)")
        conn = await asyncpg.connect(roles.database_url)
        try:
            refused = {
                sql: await _refused(conn, sql)
                for sql in (
                    f"CREATE ROLE cw_intruder_{uuid.uuid4().hex[:8]}",
                    f'CREATE DATABASE "cw_intruder_{uuid.uuid4().hex[:8]}"',
                    "SELECT * FROM pg_authid",
                    f"ALTER ROLE {role} SUPERUSER",
                    f"ALTER ROLE {role} CREATEDB",
                    "SELECT * FROM someone_elses.t",
                    "CREATE TABLE someone_elses.mine (x int)",
                    "DROP SCHEMA someone_elses CASCADE",
                    "SELECT * FROM public.someone_elses_table",
                    "INSERT INTO public.someone_elses_table VALUES (1)",
                    "DROP TABLE public.someone_elses_table",
                    "CREATE TEMPORARY TABLE mine (x int)",
                    "COPY public.someone_elses_table TO '/tmp/cw-intruder'",
                )
            }
        finally:
            await conn.close()
        assert set(refused.values()) <= REFUSED, refused

        # Another database: it may not create anything there nor read what is there.
        other_admin = await asyncpg.connect(_on(postgres_admin_url, other_db))
        try:
            await other_admin.execute("CREATE TABLE public.theirs (x int)")
        finally:
            await other_admin.close()
        other = await asyncpg.connect(_as(roles.database_url, role, SERVICE_PASSWORD, other_db))
        try:
            refused = {
                sql: await _refused(other, sql)
                for sql in (
                    "CREATE SCHEMA mine",
                    "CREATE TABLE public.mine (x int)",
                    "SELECT * FROM public.theirs",
                    "DROP TABLE public.theirs",
                )
            }
        finally:
            await other.close()
        assert set(refused.values()) <= REFUSED, refused
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{other_db}" WITH (FORCE)')
        await admin.close()


def _on(url: str, database: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


async def test_every_step_runs_as_the_service_role_and_the_reader_reads_views_only(
    roles: Settings, tmp_path: Path
) -> None:
    # The administrator's step and cw init as the commands an operator runs.
    env = cw_env(
        roles.nats_url,
        roles.database_url,
        admin_database_url=roles.admin_database_url or "",
        reader_role=roles.reader_role,
        reader_password=READER_PASSWORD,
        campaign_file=str(roles.campaign_file),
    )
    done = cw(env, "db", "setup")
    assert done.returncode == 0, done.stderr
    env.pop("CW_ADMIN_DATABASE_URL")
    done = cw(env, "init")
    assert done.returncode == 0, done.stderr
    assert f"read-only role {roles.reader_role}: granted the public views" in done.stdout
    for said in (done.stdout, done.stderr):
        assert SERVICE_PASSWORD not in said and READER_PASSWORD not in said

    webhook = FakeWebhook()
    await webhook.start()
    settings = roles.model_copy(
        update={
            "notify_file": notify_file(
                tmp_path / "notify.toml",
                [{"name": "sms-gateway", "kind": "webhook", "url": webhook.url}],
            ),
            "projector_fetch_wait": timedelta(milliseconds=200),
            "reminders_fetch_wait": timedelta(milliseconds=200),
        }
    )
    nc = await nats.connect(settings.nats_url)
    admin = await asyncpg.connect(settings.admin_database_url or "")
    try:
        harness = Harness(settings, nc, admin)
        t0 = soon(0)
        await harness.publish([f.venue("LY-FM-001", t0), f.issue("LY-FM-001", "I-1", t0)])
        await harness.project()
        assert await admin.fetchval("SELECT count(*) FROM public.issue_status") == 1

        async with reminders_in_process(settings) as reminders, notifier_in_process(settings) as n:

            async def reminded_and_delivered() -> bool:
                return bool(await published(nc)) and len(webhook.calls) >= 1

            await eventually(
                reminded_and_delivered, within=30, what="a reminder published and delivered",
                running=[reminders, n],
            )  # fmt: skip

        await rebuild(settings, ProjectorMetrics())
        assert await admin.fetchval("SELECT active_schema FROM cw.read_model_head") == "cw_rm_2"
        owners = await admin.fetch(
            "SELECT DISTINCT pg_get_userbyid(c.relowner) AS owner FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = ANY($1::text[]) OR n.nspname ~ '^cw_rm_' "
            "OR (n.nspname = 'public' AND c.relname = ANY($2::text[]))",
            [*SYSTEM_SCHEMAS],
            list(PUBLIC_VIEWS),
        )
        assert [r["owner"] for r in owners] == [_role(settings)]
    finally:
        await admin.close()
        await nc.close()
        await webhook.stop()

    # The operators' commands: cw audit as the services' role, cw report as the reader.
    done = cw(env, "audit")
    assert done.returncode == 0, done.stdout + done.stderr
    reader_url = _as(settings.database_url, settings.reader_role, READER_PASSWORD)
    as_reader = {**env, "CW_READER_DATABASE_URL": reader_url}
    done = cw(as_reader, "report", "summary", "--format", "json")
    assert done.returncode == 0, done.stderr
    reader = await asyncpg.connect(reader_url)
    try:
        for view in PUBLIC_VIEWS:
            await reader.fetchval(f"SELECT count(*) FROM public.{view}")
        assert await reader.fetchval("SELECT count(*) FROM public.issue_status") == 1
        refused = {
            sql: await _refused(reader, sql)
            for sql in (
                "SELECT * FROM cw_rm_2.issues",
                "SELECT * FROM cw.read_model_head",
                "SELECT * FROM cw.dead_letter_actions",
                "SELECT * FROM cw_reminders.timers",
                "SELECT * FROM cw_reminders.venues",
                "SELECT * FROM cw_notifier.reminders",
                "DELETE FROM public.issue_status",
                "INSERT INTO cw_reminders.checkpoint VALUES ('x', 1)",
                "CREATE TABLE public.mine (x int)",
                "CREATE TEMPORARY TABLE mine (x int)",
            )
        }
    finally:
        await reader.close()
    assert set(refused.values()) <= REFUSED, refused


async def test_a_superusers_deployment_is_handed_over_to_the_service_role(
    roles: Settings,
) -> None:
    admin_url = roles.admin_database_url or ""
    # What a deployment of before looked like: everything made by a superuser.
    await initialise(roles.model_copy(update={"database_url": admin_url}))
    report = "\n".join(await setup(roles))
    assert "objects handed over" in report
    assert "live generation 1" in "\n".join(await initialise(roles))
    admin = await asyncpg.connect(admin_url)
    try:
        owners = await admin.fetch(
            "SELECT DISTINCT pg_get_userbyid(nspowner) AS owner FROM pg_namespace "
            "WHERE nspname = ANY($1::text[]) OR nspname ~ '^cw_rm_'",
            [*SYSTEM_SCHEMAS],
        )
    finally:
        await admin.close()
    assert [r["owner"] for r in owners] == [_role(roles)]
    await rebuild(roles, ProjectorMetrics())


async def test_setup_refuses_an_administrator_as_the_service_role(roles: Settings) -> None:
    admin_url = roles.admin_database_url or ""
    with pytest.raises(SetupRefused, match="is the administrator"):
        await setup(roles.model_copy(update={"database_url": admin_url}))
    with pytest.raises(SetupRefused, match="CW_ADMIN_DATABASE_URL"):
        await setup(roles.model_copy(update={"admin_database_url": None}))


# What the system keeps, and who owns each: everything must be the services' role's.
OWNERS = """
SELECT n.nspname AS object, pg_get_userbyid(n.nspowner) AS owner FROM pg_namespace n
WHERE n.nspname = ANY($1::text[]) OR n.nspname ~ '^cw_rm_'
UNION ALL
SELECT n.nspname || '.' || c.relname, pg_get_userbyid(c.relowner)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'v', 'm', 'S')
  AND (n.nspname = ANY($1::text[]) OR n.nspname ~ '^cw_rm_'
       OR (n.nspname = 'public' AND c.relname = ANY($2::text[])))
"""


async def _not_owned_by(admin: asyncpg.Connection, role: str) -> dict[str, str]:
    rows = await admin.fetch(OWNERS, [*SYSTEM_SCHEMAS], list(PUBLIC_VIEWS))
    assert len(rows) > 20, rows  # the schemas, their tables and the views
    return {r["object"]: r["owner"] for r in rows if r["owner"] != role}


def _envs(roles: Settings) -> tuple[dict[str, str], dict[str, str]]:
    """``cw``'s environment as the services' role (with the administrator's URL for ``cw db
    setup``), and as the administrator, a superuser (the URL ``make run`` prints for psql)."""
    admin_url = roles.admin_database_url or ""
    common = {
        "reader_role": roles.reader_role,
        "reader_password": READER_PASSWORD,
        "campaign_file": str(roles.campaign_file),
    }
    as_service = cw_env(roles.nats_url, roles.database_url, admin_database_url=admin_url, **common)
    return as_service, cw_env(roles.nats_url, admin_url, **common)


def _one_line(done: subprocess.CompletedProcess[str], *fragments: str) -> str:
    said = done.stderr.strip()
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in said and "\n" not in said, said
    for fragment in fragments:
        assert fragment in said, said
    return said


async def test_a_superusers_rebuild_makes_what_the_services_role_owns_and_the_projector_goes_on(
    roles: Settings,
) -> None:
    """The new user's session: cw dev runs the services as the services' role, and the operator
    runs cw rebuild in a second shell as the superuser whose URL make run printed for psql."""
    service = _role(roles)
    as_service, as_admin = _envs(roles)
    for step in (("db", "setup"), ("init",)):
        done = cw(as_service, *step)
        assert done.returncode == 0, done.stderr
    settings = roles.model_copy(update={"projector_fetch_wait": timedelta(milliseconds=200)})
    nc = await nats.connect(settings.nats_url)
    admin = await asyncpg.connect(roles.admin_database_url or "")
    try:
        harness = Harness(settings, nc, admin)
        t0 = f.at("2023-03-15 10:00")

        async def issues(n: int) -> bool:
            return bool(await admin.fetchval("SELECT count(*) FROM public.issue_status") == n)

        async with projector_in_process(settings) as live:
            await harness.publish([f.venue("LY-FM-001", t0), f.issue("LY-FM-001", "I-1", t0)])
            await eventually(lambda: issues(1), within=60, what="projected", running=[live])
            done = cw(as_admin, "rebuild")
            assert done.returncode == 0, done.stderr
            assert await _not_owned_by(admin, service) == {}
            await harness.publish([f.issue("LY-FM-001", "I-2", t0)])
            await eventually(
                lambda: issues(2), within=30, what="the live projector goes on", running=[live]
            )
        assert await admin.fetchval("SELECT active_schema FROM cw.read_model_head") == "cw_rm_2"
    finally:
        await admin.close()
        await nc.close()


async def test_a_superusers_init_after_cw_db_setup_makes_what_the_services_role_owns(
    roles: Settings,
) -> None:
    service = _role(roles)
    as_service, as_admin = _envs(roles)
    done = cw(as_service, "db", "setup")
    assert done.returncode == 0, done.stderr
    assert "(schema cw created)" in done.stdout
    done = cw(as_admin, "init")
    assert done.returncode == 0, done.stderr
    assert f"read-only role {roles.reader_role}: updated" in done.stdout
    admin = await asyncpg.connect(roles.admin_database_url or "")
    try:
        assert await _not_owned_by(admin, service) == {}
    finally:
        await admin.close()
    done = cw(as_service, "rebuild")
    assert done.returncode == 0, done.stderr


async def test_a_role_that_may_not_act_as_the_services_role_is_refused_before_anything_changes(
    roles: Settings,
) -> None:
    service = _role(roles)
    as_service, _ = _envs(roles)
    done = cw(as_service, "db", "setup")
    assert done.returncode == 0, done.stderr
    admin_url = roles.admin_database_url or ""
    other = f"cw_other_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(admin_url)
    nc = await nats.connect(roles.nats_url)
    try:
        database = await admin.fetchval("SELECT current_database()")
        # May connect and create schemas: it could make a generation the services cannot use.
        await admin.execute(f"CREATE ROLE {other} LOGIN PASSWORD 'other-Pw-1'")
        await admin.execute(f'GRANT CONNECT, CREATE ON DATABASE "{database}" TO {other}')
        as_other = {**as_service, "CW_DATABASE_URL": _as(admin_url, other, "other-Pw-1")}
        said = _one_line(cw(as_other, "init"), f"run it as {service}")
        assert other in said
        assert await nc.jetstream().streams_info() == []
        schemas = await admin.fetchval(
            "SELECT array_agg(nspname::text) FROM pg_namespace WHERE nspname ~ '^cw'"
        )
        assert schemas == ["cw"]  # cw db setup's, and nothing else

        done = cw(as_service, "init")
        assert done.returncode == 0, done.stderr
        _one_line(cw(as_other, "rebuild"), f"run it as {service}")
        generations = await admin.fetchval(
            "SELECT array_agg(nspname::text) FROM pg_namespace WHERE nspname ~ '^cw_rm_'"
        )
        assert generations == ["cw_rm_1"]
    finally:
        await nc.close()
        await admin.execute(f"DROP OWNED BY {other}")
        await admin.execute(f"DROP ROLE {other}")
        await admin.close()


async def test_what_another_role_owns_is_said_in_one_line_that_names_cw_db_setup(
    roles: Settings,
) -> None:
    as_service, as_admin = _envs(roles)
    done = cw(as_service, "db", "setup")
    assert done.returncode == 0, done.stderr
    done = cw(as_service, "init")
    assert done.returncode == 0, done.stderr
    admin = await asyncpg.connect(roles.admin_database_url or "")
    try:
        # The mess a superuser's cw rebuild of before left: the live generation is its own.
        await admin.execute("ALTER SCHEMA cw_rm_1 OWNER TO CURRENT_USER")
        for table in await admin.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'cw_rm_1'"
        ):
            await admin.execute(f"ALTER TABLE cw_rm_1.{table['tablename']} OWNER TO CURRENT_USER")
        who = await admin.fetchval("SELECT current_user")
    finally:
        await admin.close()
    for command in ("rebuild", "init"):
        said = _one_line(cw(as_service, command), "cw db setup", f"belongs to {who}")
        assert "cw_rm_1" in said
    # Even a superuser is refused on the views, which run with their owner's rights: not a
    # matter of the read-only role's password.
    said = _one_line(cw(as_admin, "report", "summary"), "cw db setup", "cw_rm_1")
    assert "CW_READER_PASSWORD" not in said
    done = cw(as_service, "db", "setup")
    assert done.returncode == 0, done.stderr
    assert "objects handed over" in done.stdout
    done = cw(as_service, "rebuild")
    assert done.returncode == 0, done.stderr


async def test_rebuild_says_what_postgresql_refuses_in_one_line(roles: Settings) -> None:
    service = _role(roles)
    as_service, _ = _envs(roles)
    for step in (("db", "setup"), ("init",)):
        done = cw(as_service, *step)
        assert done.returncode == 0, done.stderr
    admin = await asyncpg.connect(roles.admin_database_url or "")
    try:
        database = await admin.fetchval("SELECT current_database()")
        await admin.execute(f'REVOKE CREATE ON DATABASE "{database}" FROM {service}')
    finally:
        await admin.close()
    _one_line(cw(as_service, "rebuild"), "permission denied for database", "cw db setup")


async def test_a_role_that_may_not_create_schemas_is_refused_before_anything_changes(
    settings: Settings,
) -> None:
    """A plain database (no cw db setup): whoever runs cw init first creates cw and is the
    services' role; one that may not create schemas is told so before a stream is made."""
    plain = f"cw_plain_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(settings.database_url)
    nc = await nats.connect(settings.nats_url)
    try:
        await admin.execute(f"CREATE ROLE {plain} LOGIN PASSWORD 'plain-Pw-1'")
        as_plain = cw_env(settings.nats_url, _as(settings.database_url, plain, "plain-Pw-1"))
        said = _one_line(cw(as_plain, "init"), "may not create schemas", "cw db setup")
        assert plain in said
        assert await nc.jetstream().streams_info() == []
    finally:
        await nc.close()
        await admin.execute(f"DROP OWNED BY {plain}")
        await admin.execute(f"DROP ROLE {plain}")
        await admin.close()
