"""``cw nats publisher DISTRICT``: the entry it prints makes a server accept the district's
publisher, and the seed it writes is that publisher, for its own district only."""

from __future__ import annotations

import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from contracts import encode_event
from services.devstack.reader import with_user
from services.devstack.servers import OwnNats
from services.permissions.domain.users import operator, password_user, quoted, server_config
from tests import factories as f
from tests.support.processes import EXAMPLES, cw, cw_env

pytestmark = pytest.mark.e2e

PASSWORD = "Operat0rPassw0rd"


@pytest.fixture
def folder() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="cw-test-nats-publisher-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_the_printed_entry_and_the_seed_file_make_a_district_publisher(
    folder: Path, database_url: str
) -> None:
    seed_file = folder / "320703.nk"
    done = cw(cw_env("nats://unused", database_url), "nats", "publisher", "320703",
              "--seed-file", str(seed_file))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(seed_file.stat().st_mode) == 0o600
    seed = seed_file.read_text().strip()
    assert seed.startswith("SU") and seed not in done.stdout + done.stderr
    [entry] = [line for line in done.stdout.splitlines() if line.startswith("{nkey:")]
    assert "CW_NATS_INBOX_PREFIX=_INBOX_320703 CW_DISTRICT=320703" in done.stdout

    again = cw(cw_env("nats://unused", database_url), "nats", "publisher", "320703",
               "--seed-file", str(seed_file))  # fmt: skip
    assert again.returncode == 1 and "never replaced" in again.stderr
    assert seed_file.read_text().strip() == seed

    config = folder / "nats.conf"
    users = [password_user("operator", quoted(PASSWORD), operator().render()), entry]
    config.write_text(server_config(users))
    with OwnNats(folder / "store", config=config) as server:
        as_operator = cw_env(with_user(server.url, "operator", PASSWORD), database_url)
        assert cw(as_operator, "init").returncode == 0
        as_district = cw_env(
            server.url, database_url,
            nats_creds=str(seed_file), nats_inbox_prefix="_INBOX_320703", district="320703",
        )  # fmt: skip
        done = cw(as_district, "publish", "--no-progress", str(EXAMPLES))
        assert done.returncode == 0, done.stdout + done.stderr
        elsewhere = f.issue("LY-FM-001", "I-9", f.at("2023-03-15 10:00"))
        other = folder / "other.jsonl"
        other.write_bytes(encode_event(elsewhere.model_copy(update={"district": "110101"})) + b"\n")
        done = cw(as_district, "publish", "--no-progress", str(other))
        assert done.returncode == 3
        assert "may only publish for its own district" in done.stdout
        assert seed not in done.stdout + done.stderr
