"""What ``cw`` says when something is missing or away: one line, each thing said once.

Run as processes, the way a person meets these messages (stdout, stderr, exit status)."""

from __future__ import annotations

import subprocess

import asyncpg
import nats
import pytest

from services.common.streams import ensure_streams, stream_plans
from tests.support.processes import EXAMPLES, cw, cw_env

pytestmark = pytest.mark.e2e

AWAY_NATS = "nats://127.0.0.1:1"
AWAY_POSTGRES = "postgresql://postgres@127.0.0.1:1/chuangwei"


def _said(done: subprocess.CompletedProcess[str]) -> str:
    """The one line the command said (on stdout or stderr, whichever it used)."""
    text = done.stdout + done.stderr
    assert text.count("\n") == 1 and text.endswith("\n"), text
    return text.rstrip("\n")


async def _streams(nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    try:
        await ensure_streams(nc.jetstream(), stream_plans())
    finally:
        await nc.close()


def test_a_missing_dead_letter_is_named_once(nats_url: str, database_url: str) -> None:
    env = cw_env(nats_url, database_url)
    assert cw(env, "init").returncode == 0
    for args in (["replay", "9999"], ["delete", "9999", "--reason", "a test"]):
        done = cw(env, "dlq", *args)
        assert done.returncode == 1
        assert _said(done) == (
            "dead letter 9999: not in CW_DEAD_LETTERS, and no replay or delete of it is recorded"
        )


@pytest.mark.parametrize("command", ["init", "audit", "rebuild", "publish", "dlq"])
def test_nats_away_is_one_line_naming_the_url_and_the_setting(
    command: str, database_url: str
) -> None:
    args = {"publish": [str(EXAMPLES)], "dlq": ["replay", "1"]}.get(command, [])
    done = cw(cw_env(AWAY_NATS, database_url), command, *args)
    assert done.returncode == 2
    said = _said(done)
    prefix = f"cw {command}: " if command in ("init", "audit", "rebuild") else ""
    assert said.startswith(f"{prefix}cannot reach NATS at {AWAY_NATS} ("), said
    assert said.endswith("); is it running, and is CW_NATS_URL right?"), said


@pytest.mark.parametrize("command", ["audit", "rebuild"])
async def test_postgres_away_is_one_line_naming_the_url_and_the_setting(
    command: str, nats_url: str
) -> None:
    await _streams(nats_url)
    done = cw(cw_env(nats_url, AWAY_POSTGRES), command)
    assert done.returncode == 2
    said = _said(done)
    assert said.startswith(f"cw {command}: cannot reach PostgreSQL at {AWAY_POSTGRES} ("), said
    assert said.endswith("); is it running, and is CW_DATABASE_URL right?"), said


def test_rebuild_before_init_says_run_cw_init(nats_url: str, database_url: str) -> None:
    env = cw_env(nats_url, database_url)
    done = cw(env, "rebuild")
    assert done.returncode == 2
    assert _said(done) == "cw rebuild: stream CW_EVENTS does not exist: run `cw init` first"


async def test_rebuild_without_a_read_model_says_run_cw_init_and_makes_nothing(
    nats_url: str, database_url: str
) -> None:
    await _streams(nats_url)
    done = cw(cw_env(nats_url, database_url), "rebuild")
    assert done.returncode == 2
    assert _said(done) == "cw rebuild: the read model does not exist: run `cw init` first"
    conn = await asyncpg.connect(database_url)
    try:
        made = await conn.fetchval("SELECT count(*) FROM pg_namespace WHERE nspname ~ '^cw_rm_'")
    finally:
        await conn.close()
    assert made == 0  # no half-made generation left behind


def test_audit_before_init_says_run_cw_init(nats_url: str, database_url: str) -> None:
    done = cw(cw_env(nats_url, database_url), "audit")
    assert done.returncode == 2
    said = _said(done)
    assert said.startswith("cw audit: ") and said.endswith("run `cw init` first"), said
    assert said.count("cw audit") == 1


def test_publish_before_init_says_run_cw_init(nats_url: str, database_url: str) -> None:
    done = cw(cw_env(nats_url, database_url), "publish", "--no-progress", str(EXAMPLES))
    assert done.returncode == 2
    assert _said(done) == "stream CW_EVENTS does not exist: run `cw init` first"
