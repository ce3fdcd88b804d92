"""The restore drill (``docs/backups.md``), small: a stack is filled (events through the
projector, a dead letter, reminders published and delivered by the notifier), PostgreSQL is
dumped (``pg_dump``) and then the streams backed up (``cw streams backup``); both are restored
into empty servers (a new nats-server, a new database, the same roles); then ``cw audit`` is
clean, the schemas are still the services' role's, and every consumer goes on: more events are
projected, reminded and delivered, and no stream-identity check objects."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import nats
import pytest
from pydantic import SecretStr

from contracts.wire import EVENTS_STREAM
from services.common.services_role import SYSTEM_SCHEMAS
from services.common.settings import Settings
from services.consumer import loop
from services.consumer.health import Health
from services.devstack.servers import OwnNats
from services.notifier.adapters.metrics import NotifierMetrics
from services.notifier.bootstrap import run_notifier
from services.projector.adapters.metrics import ProjectorMetrics
from services.projector.bootstrap import run_projector
from services.reminders.adapters.metrics import ReminderMetrics
from services.reminders.bootstrap import run_reminders
from tests import factories as f
from tests.integration.conftest import Harness
from tests.support.in_process import service_in_process
from tests.support.notifier import notify_file
from tests.support.postgres import postgres_tool
from tests.support.processes import cw, cw_env
from tests.support.reminders import campaign_file, published, soon
from tests.support.robots import FakeWebhook
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

SERVICE_PASSWORD = "service-Pw-1"
READER_PASSWORD = "reader-Pw-1"


def _as(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    netloc = f"{user}:{password}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _on(url: str, database: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


@pytest.fixture
def quick_recheck(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loop, "RECHECK_S", 0.3)


@pytest.fixture
def second_nats() -> Iterator[str]:
    """The empty nats-server the streams are restored into."""
    store = Path(tempfile.mkdtemp(prefix="cw-test-nats-drill-"))
    try:
        with OwnNats(store) as server:
            yield server.url
    finally:
        shutil.rmtree(store, ignore_errors=True)


@pytest.fixture
async def roles(settings: Settings, tmp_path: Path) -> AsyncIterator[Settings]:
    """Settings as a services' role of this test's own (``cw db setup`` makes it), whose
    restored database is dropped before the roles are."""
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
            "projector_fetch_wait": timedelta(milliseconds=200),
            "reminders_fetch_wait": timedelta(milliseconds=200),
        }
    )
    restored = f"{urlsplit(admin_url).path.lstrip('/')}_restored"
    try:
        yield as_service
    finally:
        admin = await asyncpg.connect(admin_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{restored}" WITH (FORCE)')
            for role in (service, reader):
                if await admin.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role):
                    await admin.execute(f"DROP OWNED BY {role}")
                    await admin.execute(f"DROP ROLE {role}")
        finally:
            await admin.close()


def _env(settings: Settings, **more: str) -> dict[str, str]:
    return cw_env(
        settings.nats_url,
        settings.database_url,
        reader_role=settings.reader_role,
        reader_password=READER_PASSWORD,
        campaign_file=str(settings.campaign_file),
        **more,
    )


def _ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _run(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stderr


async def _stack_runs(
    settings: Settings, webhook: FakeWebhook, harness: Harness, issue: str
) -> tuple[Health, Health, Health]:
    """Run the three services until ``issue`` is projected and its reminder delivered."""
    healths = Health(), Health(), Health()
    runners = (
        service_in_process(partial(run_projector, health=healths[0]), settings, ProjectorMetrics()),
        service_in_process(partial(run_reminders, health=healths[1]), settings, ReminderMetrics()),
        service_in_process(partial(run_notifier, health=healths[2]), settings, NotifierMetrics()),
    )
    async with runners[0] as p, runners[1] as r, runners[2] as n:

        async def through() -> bool:
            projected = await harness.db.fetchval(
                "SELECT count(*) FROM public.issue_status WHERE issue_id = $1", issue
            )
            reminded = [x for x in await published(harness.nc) if x.reminder.issue_id == issue]
            delivered = [c for c in webhook.calls if issue in str(c.body)]
            return bool(projected and reminded and delivered)

        await eventually(
            through, within=60, what=f"{issue} projected, reminded and delivered",
            running=[p, r, n],
        )  # fmt: skip
        for health in healths:
            assert health.replaced is None
    return healths


async def test_the_restore_drill(
    roles: Settings, second_nats: str, tmp_path: Path, quick_recheck: None
) -> None:
    admin_url = roles.admin_database_url or ""
    env = _env(roles, admin_database_url=admin_url)
    _ok(cw(env, "db", "setup"))
    env.pop("CW_ADMIN_DATABASE_URL")
    _ok(cw(env, "init"))

    webhook = FakeWebhook()
    await webhook.start()
    settings = roles.model_copy(
        update={
            "notify_file": notify_file(
                tmp_path / "notify.toml", [{"name": "hook", "kind": "webhook", "url": webhook.url}]
            )
        }
    )
    nc = await nats.connect(settings.nats_url)
    admin = await asyncpg.connect(admin_url)
    try:
        harness = Harness(settings, nc, admin)
        t0 = soon(0)
        await harness.publish([f.venue("LY-FM-001", t0), f.issue("LY-FM-001", "I-1", t0)])
        await harness.publish_raw("cw.events.320703.LY-FM-001.IssueFound", b"{not json")
        await _stack_runs(settings, webhook, harness, "I-1")
        server_major = int(await admin.fetchval("SHOW server_version_num")) // 10000
    finally:
        await admin.close()
        await nc.close()

    # The backup: PostgreSQL first, then the streams (which then hold every message the
    # database's checkpoints name).
    dump = tmp_path / "chuangwei.dump"
    _run([str(postgres_tool("pg_dump", server_major)), "--format=custom", f"--file={dump}",
          f"--dbname={admin_url}"])  # fmt: skip
    _ok(cw(env, "streams", "backup", str(tmp_path / "streams")))

    # The restore, into empty servers: the streams, the administrator's step for the new
    # database, its contents (owners kept: the roles exist), then cw init as the services.
    new_db = f"{urlsplit(admin_url).path.lstrip('/')}_restored"
    restored = roles.model_copy(
        update={
            "nats_url": second_nats,
            "database_url": _on(roles.database_url, new_db),
            "notify_file": settings.notify_file,
        }
    )  # fmt: skip
    renv = _env(restored)
    said = _ok(cw(renv, "streams", "restore", str(tmp_path / "streams")))
    assert f"stream {EVENTS_STREAM}: restored 3 messages, sequences 1–3" in said
    _ok(cw({**renv, "CW_ADMIN_DATABASE_URL": admin_url}, "db", "setup"))
    # --clean: cw db setup made an empty schema cw, which the dump's replaces.
    _run([str(postgres_tool("pg_restore", server_major)), "--exit-on-error", "--clean",
          "--if-exists", f"--dbname={_on(admin_url, new_db)}",
          str(dump)])  # fmt: skip
    _ok(cw(renv, "init"))
    audit = _ok(cw(renv, "audit"))
    assert "every message is accounted for" in audit

    nc = await nats.connect(restored.nats_url)
    db = await asyncpg.connect(restored.database_url)
    try:
        owners = await db.fetch(
            "SELECT DISTINCT pg_get_userbyid(nspowner) AS owner FROM pg_namespace "
            "WHERE nspname = ANY($1::text[]) OR nspname ~ '^cw_rm_'",
            [*SYSTEM_SCHEMAS],
        )
        assert [r["owner"] for r in owners] == [urlsplit(roles.database_url).username]
        # What each consumer's stream-identity check compares: a message id at its checkpoint.
        tracked = await db.fetch(
            "SELECT stream_seq, message_id FROM cw_reminders.checkpoint UNION ALL "
            "SELECT stream_seq, message_id FROM cw_notifier.checkpoints"
        )
        assert len(tracked) == 2 and all(r["stream_seq"] > 0 and r["message_id"] for r in tracked)
        harness = Harness(restored, nc, db)
        before = len(webhook.calls)
        t1 = soon(0)
        await harness.publish([f.issue("LY-FM-001", "I-2", t1)])
        await _stack_runs(restored, webhook, harness, "I-2")
        # Nothing delivered before the backup was delivered again.
        assert all("I-1" not in str(c.body) for c in webhook.calls[before:])
    finally:
        await db.close()
        await nc.close()
        await webhook.stop()
    assert "every message is accounted for" in _ok(cw(renv, "audit"))
