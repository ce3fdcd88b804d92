"""The whole system on a nats-server with ``cw dev --secure``'s users: each command and service
as its own user, end to end, and each refused clearly when it is someone else."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from contracts import encode_event
from contracts.wire import REMINDERS_STREAM
from services.cli import EXIT_REFUSED
from tests import factories as f
from tests.support.processes import EXAMPLES, ProjectorProcess, cw
from tests.support.reminders import campaign_file, soon
from tests.support.robots import FakeWebhook
from tests.support.secure_nats import DISTRICT, SecuredServer, secured_server, watched
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e

SERVICES = ("projector", "reminders", "notifier")


@pytest.fixture
def secured() -> Iterator[SecuredServer]:
    with secured_server() as server:
        yield server


def _env(secured: SecuredServer, role: str, database_url: str, **settings: str) -> dict[str, str]:
    env = {**os.environ, "CW_DATABASE_URL": database_url, **secured.env(role)}
    env.update({f"CW_{k.upper()}": v for k, v in settings.items()})
    return env


def _secrets(secured: SecuredServer) -> list[str]:
    return [u.password for u in secured.access.users.values()]


def _clean(secured: SecuredServer, text: str) -> None:
    assert "Traceback" not in text
    assert [s for s in _secrets(secured) if s in text] == []


async def test_every_command_and_service_works_as_its_own_user(
    secured: SecuredServer, database_url: str, tmp_path: Path
) -> None:
    webhook = FakeWebhook()
    await webhook.start()
    notify = tmp_path / "notify.toml"
    notify.write_text(f'[[targets]]\nname = "hook"\nkind = "webhook"\nurl = "{webhook.url}"\n')
    common = {
        "campaign_file": str(campaign_file(tmp_path)),  # a reminder within seconds
        "notify_file": str(notify),
        "metrics_port": "0",
        "reminders_metrics_port": "0",
        "notifier_metrics_port": "0",
        "projector_fetch_wait": "200ms",
        "reminders_fetch_wait": "200ms",
    }
    said = ""
    done = cw(_env(secured, "operator", database_url, **common), "init")
    assert done.returncode == 0, done.stdout + done.stderr
    said += done.stdout + done.stderr

    fresh = tmp_path / "fresh.jsonl"
    fresh.write_bytes(encode_event(f.issue("LY-FM-001", "SECURE-1", soon(0))) + b"\n")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"event_id": "nope"}\n', encoding="utf-8")
    publisher = _env(secured, "publisher", database_url, **common)
    for path, code in ((EXAMPLES, 0), (fresh, 0), (bad, 1)):
        done = cw(publisher, "publish", "--no-progress", str(path))
        assert done.returncode == code, done.stdout + done.stderr
        said += done.stdout + done.stderr
    assert f"cw.dlq.intake.{DISTRICT}" in done.stdout

    processes = [
        ProjectorProcess(_env(secured, s, database_url, **common), tmp_path / f"{s}.log", s)
        for s in SERVICES
    ]
    try:
        for p in processes:
            p.start()
        events = len(EXAMPLES.read_text(encoding="utf-8").splitlines()) + 1
        db = await asyncpg.connect(database_url)
        try:

            async def projected() -> bool:
                n = await db.fetchval("select count(*) from public.event_archive")
                return bool(n == events)

            await eventually(projected, within=60, what=f"{events} events projected")
        finally:
            await db.close()
        await eventually(
            lambda: asyncio.sleep(0, bool(webhook.calls)),
            within=60,
            what="the notifier delivers the reminder",
        )
    finally:
        for p in processes:
            if p.proc is not None and p.proc.poll() is None:
                assert p.stop() == 0, p.tail()
            p.ensure_gone()
        await webhook.stop()
    for p in processes:
        log = p.log.read_text(errors="replace")
        assert "refused" not in log, log
        said += log

    async with watched(secured.url("operator")) as operator:
        info = await operator.nc.jetstream().stream_info(REMINDERS_STREAM)
        assert info.state.messages >= 1
    operator_env = _env(secured, "operator", database_url)
    for args in (("dlq", "list"), ("audit",)):
        done = cw(operator_env, *args)
        assert done.returncode == 0, done.stdout + done.stderr
        said += done.stdout + done.stderr
    assert "intake 1" in said
    _clean(secured, said)


async def test_a_publisher_is_refused_another_district_in_one_line(
    secured: SecuredServer, database_url: str, tmp_path: Path
) -> None:
    assert cw(_env(secured, "operator", database_url), "init").returncode == 0
    other = f.issue("LY-FM-001", "ELSEWHERE", soon(0)).model_copy(update={"district": "110101"})
    path = tmp_path / "other.jsonl"
    path.write_bytes(encode_event(other) + b"\n")
    done = cw(_env(secured, "publisher", database_url), "publish", "--no-progress", str(path))
    said = done.stdout + done.stderr
    assert done.returncode == 3, said
    assert said.splitlines() == [
        f"NATS refused to let this user publish to {other.subject}: this publisher may only "
        "publish for its own district (check the file's districts, and the user in CW_NATS_URL "
        "or CW_NATS_CREDS)"
    ]
    _clean(secured, said)

    # Without its inbox prefix, the acknowledgements could not reach it: said as well.
    wrong = {**_env(secured, "publisher", database_url), "CW_NATS_INBOX_PREFIX": "_INBOX"}
    done = cw(wrong, "publish", "--no-progress", str(EXAMPLES))
    assert done.returncode == 3
    assert "set CW_NATS_INBOX_PREFIX" in done.stdout
    _clean(secured, done.stdout + done.stderr)

    # Another district's CW_DISTRICT: its rejected lines would go where this user may not write.
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"event_id": "nope"}\n', encoding="utf-8")
    elsewhere = {**_env(secured, "publisher", database_url), "CW_DISTRICT": "110101"}
    done = cw(elsewhere, "publish", "--no-progress", str(bad))
    assert done.returncode == 3
    assert done.stdout.splitlines()[-1] == (
        "NATS refused to let this user publish to cw.dlq.intake.110101: this publisher may keep "
        "only its own district's rejected lines: set CW_DISTRICT"
    )


def test_a_publisher_may_not_run_operators_commands(
    secured: SecuredServer, database_url: str
) -> None:
    env = _env(secured, "publisher", database_url)
    done = cw(env, "dlq", "list")
    said = done.stdout + done.stderr
    assert done.returncode == 2, said
    assert said.splitlines() == [
        "NATS refused to let this user use the JetStream API: cw init, cw dlq, cw audit, "
        "cw rebuild and cw streams are the operator's"
    ]
    _clean(secured, said)
    done = cw(env, "init")
    said = done.stdout + done.stderr
    assert done.returncode == 2, said
    assert "cw init: NATS did not answer in time; a request this NATS user may not make" in said
    _clean(secured, said)


@pytest.mark.parametrize(("service", "someone_else"), [
    ("projector", "notifier"), ("reminders", "projector"), ("notifier", "reminders"),
])  # fmt: skip
async def test_a_service_run_as_another_user_says_what_was_refused(
    secured: SecuredServer, database_url: str, tmp_path: Path, service: str, someone_else: str
) -> None:
    notify = tmp_path / "notify.toml"
    notify.write_text('[[targets]]\nname = "hook"\nkind = "webhook"\nurl = "http://127.0.0.1:9/"\n')
    settings = {
        "notify_file": str(notify),
        "metrics_port": "0",
        "reminders_metrics_port": "0",
        "notifier_metrics_port": "0",
    }
    assert cw(_env(secured, "operator", database_url, **settings), "init").returncode == 0
    process = ProjectorProcess(
        _env(secured, someone_else, database_url, **settings), tmp_path / "log", service
    )
    process.start()
    try:

        async def refused() -> str | None:
            log = process.log.read_text(errors="replace")
            return next((line for line in log.splitlines() if "refused" in line), None)

        line = await eventually(refused, within=30, what=f"{service} says what NATS refused")
        assert f"NATS at nats://{someone_else}:***@" in line
        assert f"refused cw-{service}: permissions violation for publish to" in line
        # ... and stops: waiting would not give this user the rights it lacks.
        assert process.proc is not None
        status = await asyncio.to_thread(process.proc.wait, 60)
        said = process.log.read_text(errors="replace")
        assert status == EXIT_REFUSED, said
        assert "this service's own user? : stopping" in said or "own user?: stopping" in said
        assert "Traceback" not in said
    finally:
        process.ensure_gone()
    _clean(secured, process.log.read_text(errors="replace"))
