"""No password in any output: every command, and a running service's log, /metrics and /healthz,
are searched for the secrets they were given, on the happy path and when a server is away."""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from services.devstack.servers import OwnNats
from services.devstack.system import free_port
from tests.support.processes import EXAMPLES, ProjectorProcess, cw
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e

NATS_SECRET = "NatsS3cr3tPW"
PG_SECRET = "PgS3cr3tPW"


@pytest.fixture
def nats_with_password() -> Iterator[str]:
    store = Path(tempfile.mkdtemp(prefix="cw-test-nats-secret-"))
    try:
        with OwnNats(store, user="probeuser", password=NATS_SECRET) as server:
            yield server.url
    finally:
        shutil.rmtree(store, ignore_errors=True)


def _with_password(url: str) -> str:
    # The test server trusts local connections, so the password is carried and never checked:
    # what matters here is that it is never shown.
    parts = urlsplit(url)
    netloc = f"{parts.username or 'postgres'}:{PG_SECRET}@{parts.hostname}:{parts.port or 5432}"
    return urlunsplit(parts._replace(netloc=netloc))


def _leaks(text: str) -> list[str]:
    return [secret for secret in (NATS_SECRET, PG_SECRET) if secret in text]


def _scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        body: bytes = response.read()
    return body.decode()


async def test_no_command_or_service_shows_a_password(
    nats_with_password: str, database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "CW_NATS_URL": nats_with_password,
        "CW_DATABASE_URL": _with_password(database_url),
        "CW_METRICS_PORT": str(port),
        "CW_PROJECTOR_FETCH_WAIT": "200ms",
    }
    away = {
        **env,
        "CW_NATS_URL": f"nats://probeuser:{NATS_SECRET}@127.0.0.1:{free_port()}",
        "CW_DATABASE_URL": f"postgresql://postgres:{PG_SECRET}@127.0.0.1:{free_port()}/x",
    }
    with_reader_and_admin = {
        **env,
        "CW_READER_DATABASE_URL": env["CW_DATABASE_URL"],
        "CW_ADMIN_DATABASE_URL": env["CW_DATABASE_URL"],
    }
    away["CW_READER_DATABASE_URL"] = away["CW_ADMIN_DATABASE_URL"] = away["CW_DATABASE_URL"]
    seed_file = tmp_path / "publisher.nk"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"event_id": "nope"}\n', encoding="utf-8")
    said: dict[str, str] = {}

    def run(name: str, environment: dict[str, str], *args: str) -> int:
        done = cw(environment, *args)
        said[name] = done.stdout + done.stderr
        return done.returncode

    assert run("init", env, "init") == 0, said["init"]
    projector = ProjectorProcess(env, tmp_path / "projector.log")
    projector.start()
    try:
        assert run("publish", env, "publish", "--no-progress", str(EXAMPLES)) == 0, said
        assert run("publish bad", env, "publish", "--no-progress", str(bad)) == 1, said

        async def projected() -> bool:
            return "cw_projector_checkpoint_seq 157.0" in _scrape(
                f"http://127.0.0.1:{port}/metrics"
            )

        await eventually(projected, within=60, what=lambda: "projected\n" + projector.tail())
        said["metrics"] = _scrape(f"http://127.0.0.1:{port}/metrics")
        said["healthz"] = _scrape(f"http://127.0.0.1:{port}/healthz")
        for name, args in {
            "dlq list": ("dlq", "list"),
            "audit": ("audit",),
            "venue": ("venue", "LY-FM-001"),
            "rebuild": ("rebuild",),
            "help": ("--help",),
            "report": ("report",),
            # Refused (the services' user is the administrator), and says so without either URL's
            # password.
            "db setup": ("db", "setup"),
            "nats publisher": ("nats", "publisher", "320706", "--seed-file", str(seed_file)),
        }.items():
            run(name, with_reader_and_admin, *args)
        for name, args in {
            "init (away)": ("init",),
            "publish (away)": ("publish", "--no-progress", str(EXAMPLES)),
            "dlq list (away)": ("dlq", "list"),
            "audit (away)": ("audit",),
            "venue (away)": ("venue", "LY-FM-001"),
            "rebuild (away)": ("rebuild",),
            "report (away)": ("report",),
            "db setup (away)": ("db", "setup"),
        }.items():
            assert run(name, away, *args) != 0, said[name]
    finally:
        assert projector.stop() == 0
    said["projector log"] = projector.log.read_text(errors="replace")
    # The new district's seed is written to its file, never shown.
    seed = seed_file.read_text().strip()
    assert seed.startswith("SU")
    assert not [name for name, text in said.items() if seed in text]
    leaks = {name: _leaks(text) for name, text in said.items() if _leaks(text)}
    assert leaks == {}, {name: said[name][-2000:] for name in leaks}
    # The failures did say where they could not connect, with the password masked.
    assert "probeuser" in said["init (away)"] and "cannot" in said["init (away)"]
