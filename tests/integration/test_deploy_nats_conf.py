"""``deploy/nats.conf`` as shipped (ports and store given on the command line): it needs every
password from the environment, refuses anonymous clients, and a publisher line printed by
``cw nats publisher`` added to its users makes that district's publisher."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import nats
import nats.errors
import pytest

from services.devstack.reader import with_user
from services.devstack.servers import OwnNats
from services.devstack.system import nats_server_binary
from services.permissions.domain.users import SERVICES, inbox_prefix, password_variable
from services.permissions.entrypoints.cli import publisher_entry

pytestmark = pytest.mark.integration

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
ROLES = ("operator", *SERVICES)


def _copy(to: Path) -> Path:
    for name in ("nats.conf", "nats-users.conf"):
        shutil.copy(DEPLOY / name, to / name)
    # The store is the test's, given on the command line: nats-server refuses it twice.
    config = to / "nats.conf"
    text = config.read_text(encoding="utf-8")
    assert "store_dir: /data\n" in text
    config.write_text(text.replace("store_dir: /data\n", ""), encoding="utf-8")
    return config


def test_the_server_will_not_start_without_the_passwords(tmp_path: Path) -> None:
    config = _copy(tmp_path)
    done = subprocess.run(
        [str(nats_server_binary()), "-c", str(config), "-t"],
        capture_output=True, text=True, timeout=30, check=False,
        env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode != 0
    assert "CW_NATS_OPERATOR_PASSWORD" in done.stdout + done.stderr


async def test_the_shipped_configuration_lets_in_its_users_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _copy(tmp_path)
    passwords = {role: f"{role}-Pw-1" for role in ROLES}
    for role, password in passwords.items():
        monkeypatch.setenv(password_variable(role), password)
    _, notes = publisher_entry("320703", tmp_path / "320703.nk")
    [entry] = [line for line in notes if line.startswith("{nkey:")]
    users = (tmp_path / "nats-users.conf").read_text(encoding="utf-8")
    head, _, tail = users.rpartition("]")
    (tmp_path / "nats-users.conf").write_text(f"{head}  {entry}\n]{tail}", encoding="utf-8")

    with OwnNats(tmp_path / "store", config=config) as server:
        with pytest.raises(nats.errors.Error):
            await nats.connect(server.url, max_reconnect_attempts=0, allow_reconnect=False)
        for role, password in passwords.items():
            prefix = "_INBOX" if role == "operator" else inbox_prefix(role)
            nc = await nats.connect(with_user(server.url, role, password), inbox_prefix=prefix)
            if role == "operator":
                js = nc.jetstream()
                await js.add_stream(name="CW_EVENTS", subjects=["cw.events.>"])
                await js.add_stream(name="CW_DEAD_LETTERS", subjects=["cw.dlq.>"])
            await nc.close()
        district = await nats.connect(
            server.url,
            nkeys_seed=str(tmp_path / "320703.nk"),
            inbox_prefix=inbox_prefix("320703"),
        )
        try:
            ack = await district.jetstream().publish("cw.events.320703.V-1.IssueFound", b"{}")
            assert ack.stream == "CW_EVENTS"
        finally:
            await district.close()
