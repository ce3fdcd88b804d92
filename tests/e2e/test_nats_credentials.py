"""Credentials reach every command and service the same way (CW_NATS_CREDS, or a user and
password in CW_NATS_URL), and NATS refusing them is said in one line, at once, without a secret."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nkeys
import pytest

from services.devstack.servers import OwnNats
from tests.support.processes import ROOT, cw, cw_env

pytestmark = pytest.mark.e2e

PASSWORD = "OperatorS3cr3t"


def _user_seed() -> tuple[str, str]:
    """A new NKey user: (seed, public key)."""
    seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
    return seed.decode(), nkeys.from_seed(seed).public_key.decode()


@dataclass(frozen=True)
class Server:
    host_url: str
    """The URL without credentials."""
    seed_file: Path
    """An NKey seed the server knows."""
    stranger_seed_file: Path
    """An NKey seed it does not know."""


@pytest.fixture
def nats_with_users() -> Iterator[Server]:
    folder = Path(tempfile.mkdtemp(prefix="cw-test-nats-users-"))
    seed, public = _user_seed()
    stranger, _ = _user_seed()
    (folder / "known.nk").write_text(seed + "\n")
    (folder / "stranger.nk").write_text(stranger + "\n")
    config = folder / "nats.conf"
    config.write_text(
        "authorization { users = [\n"
        f'  {{ nkey: "{public}" }}\n'
        f'  {{ user: "operator", password: "{PASSWORD}" }}\n'
        "] }\n"
    )
    try:
        with OwnNats(folder / "store", config=config) as server:
            yield Server(server.url, folder / "known.nk", folder / "stranger.nk")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _with_user(url: str, user: str, password: str) -> str:
    return url.replace("nats://", f"nats://{user}:{password}@", 1)


def test_a_seed_in_cw_nats_creds_is_who_a_command_is(
    nats_with_users: Server, database_url: str
) -> None:
    env = cw_env(nats_with_users.host_url, database_url, nats_creds=str(nats_with_users.seed_file))
    done = cw(env, "init")
    assert done.returncode == 0, done.stderr
    assert "CW_EVENTS" in done.stdout


def test_a_seed_the_server_does_not_know_is_refused_in_one_line(
    nats_with_users: Server, database_url: str
) -> None:
    seed = nats_with_users.stranger_seed_file.read_text().strip()
    env = cw_env(
        nats_with_users.host_url, database_url, nats_creds=str(nats_with_users.stranger_seed_file)
    )
    done = cw(env, "dlq", "list")
    assert done.returncode == 2
    said = done.stdout + done.stderr
    assert "refused these credentials" in said
    assert "Traceback" not in said
    assert seed not in said


def test_a_wrong_password_stops_a_service_at_once_with_its_own_exit_status(
    nats_with_users: Server, database_url: str
) -> None:
    url = _with_user(nats_with_users.host_url, "operator", "not-" + PASSWORD)
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", "run", "reminders"],
        cwd=ROOT,
        env=cw_env(url, database_url, reminders_metrics_port="0"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    said = done.stdout + done.stderr
    assert done.returncode == 3, said
    assert "refused these credentials (Authorization Violation)" in said
    assert said.count("Traceback") == 0
    assert PASSWORD not in said


def test_the_right_password_in_the_url_works_for_a_command(
    nats_with_users: Server, database_url: str
) -> None:
    url = _with_user(nats_with_users.host_url, "operator", PASSWORD)
    done = cw(cw_env(url, database_url), "init")
    assert done.returncode == 0, done.stderr
    assert PASSWORD not in done.stdout + done.stderr
