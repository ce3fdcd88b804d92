"""The devstack's small helpers: ports, permissions, where things go, the stack file."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from services.cli import _use_the_stack_of_cw_dev
from services.devstack.cli import (
    DevService,
    _publish_hint,
    metrics_ports,
    psql_command,
    report_lines,
)
from services.devstack.reader import reader_access
from services.devstack.stack import LocalStack
from services.devstack.stack_file import remove_stack_file, running_stack, write_stack_file
from services.devstack.system import (
    Account,
    first_closed_folder,
    free_port,
    permits,
    postgres_bindir_candidates,
    world_temp_dir,
)

pytestmark = pytest.mark.unit

DIR = stat.S_IFDIR


def test_free_port_can_be_listened_on() -> None:
    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_free_port_keeps_a_preferred_port_only_while_it_is_free() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        assert free_port(prefer=taken) != taken
    assert free_port(prefer=taken) == taken


@pytest.mark.parametrize(
    ("mode", "uid", "gids", "expected"),
    [
        (0o700, 1000, {1000}, True),  # the owner
        (0o700, 2000, {2000}, False),  # a stranger
        (0o710, 2000, {100}, True),  # a member of the group
        (0o701, 2000, {2000}, True),  # everyone
        (0o071, 1000, {100}, False),  # the owner gets the owner bits only
        (0o000, 0, {0}, True),  # root enters any folder
    ],
)
def test_permits_folder_entry(mode: int, uid: int, gids: set[int], expected: bool) -> None:
    assert permits(DIR | mode, owner=1000, group=100, uid=uid, gids=gids) is expected


def test_root_may_not_execute_a_file_nobody_may_execute() -> None:
    regular = stat.S_IFREG
    assert not permits(regular | 0o644, owner=1000, group=100, uid=0, gids={0})
    assert permits(regular | 0o744, owner=1000, group=100, uid=0, gids={0})


def test_first_closed_folder(tmp_path: Path) -> None:
    me = Account.current()
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    assert first_closed_folder(private, me) is None
    assert first_closed_folder(private / "missing", me) == private / "missing"
    if me.uid != 0:
        return
    stranger = Account(uid=54321, gid=54321, name="stranger")
    closed = first_closed_folder(private, stranger)
    assert closed is not None
    assert private.is_relative_to(closed)


def test_world_temp_dir_is_stable_per_key_and_enterable() -> None:
    a = world_temp_dir("/some/project/.cw/postgres")
    assert a == world_temp_dir("/some/project/.cw/postgres")
    assert a != world_temp_dir("/other/project/.cw/postgres")
    assert a.name.startswith("cw-pg-")
    assert os.stat(a.parent).st_mode & stat.S_IXOTH


def test_bindir_candidates_are_unique() -> None:
    bindirs = [bindir for bindir, _ in postgres_bindir_candidates()]
    assert len(bindirs) == len(set(bindirs))


def test_metrics_ports_per_service() -> None:
    base = free_port()
    two = [DevService("a", ["a"], 9464), DevService("b", ["b"], 9465)]
    ports = [p.port for p in metrics_ports(two, base)]  # CW_METRICS_PORT: base, base + 1, ...
    assert ports[0] == base
    assert ports[1] != base
    assert [p.port for p in metrics_ports(two, 0)] == [0, 0]


def test_publish_hint_names_only_what_differs_from_the_defaults() -> None:
    defaults = {
        "CW_NATS_URL": "nats://127.0.0.1:4222",
        "CW_DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/chuangwei",
    }
    assert _publish_hint(defaults) == ".venv/bin/cw publish contracts/examples/events.jsonl"
    own = {**defaults, "CW_NATS_URL": "nats://127.0.0.1:40000"}
    assert _publish_hint(own).startswith("CW_NATS_URL=nats://127.0.0.1:40000 .venv/bin/cw ")


async def test_configured_urls_are_used_as_they_are(tmp_path: Path) -> None:
    environ = {
        "CW_NATS_URL": "nats://nats.example:4222",
        "CW_DATABASE_URL": "postgresql://cw:secret@db/x",
    }
    async with LocalStack(tmp_path, environ=environ) as stack:
        assert stack.env == environ
        # The psql line names the variable: the password stays out of the output.
        assert psql_command(stack).endswith(
            """ "$CW_DATABASE_URL" -c 'select * from phase_summary'"""
        )
        assert stack.nats is None
        assert stack.postgres is None
    assert not (tmp_path / ".cw").exists()


def test_cw_dev_keeps_a_development_reader_password_and_never_prints_it(tmp_path: Path) -> None:
    url = "postgresql://postgres@127.0.0.1:5432/chuangwei"
    first = reader_access({}, url, own_database=True, data_dir=tmp_path, role="cw_reader")
    assert first is not None
    again = reader_access({}, url, own_database=True, data_dir=tmp_path, role="cw_reader")
    assert again is not None and again.password == first.password  # the same across restarts
    assert (tmp_path / "reader-password").stat().st_mode & 0o777 == 0o600
    assert first.url == f"postgresql://cw_reader:{first.password}@127.0.0.1:5432/chuangwei"
    assert first.env["CW_READER_DATABASE_URL"] == first.url
    printed = "\n".join(report_lines(first, initialised=False))
    assert first.password not in printed
    assert first.masked in printed and "cw_reader:***@" in printed
    assert (
        'CW_READER_DATABASE_URL="postgresql://cw_reader:$(cat '
        f'{tmp_path}/reader-password)@127.0.0.1:5432/chuangwei" .venv/bin/cw report'
    ) in printed
    assert 'CW_READER_PASSWORD="$(cat ' in printed  # the role is made by that init


def test_a_configured_database_gets_a_reader_only_with_a_password(tmp_path: Path) -> None:
    url = "postgresql://cw:secret@db/x"
    assert reader_access({}, url, own_database=False, data_dir=tmp_path, role="r") is None
    assert not tmp_path.joinpath("reader-password").exists()
    assert "set CW_READER_PASSWORD" in report_lines(None, initialised=True)[0]
    given = reader_access(
        {"CW_READER_PASSWORD": "p@ss"}, url, own_database=False, data_dir=tmp_path, role="r"
    )
    assert given is not None and given.url == "postgresql://r:p%40ss@db/x"
    printed = "\n".join(report_lines(given, initialised=True))
    assert "p@ss" not in printed and "p%40ss" not in printed
    assert 'CW_READER_DATABASE_URL="postgresql://r:$CW_READER_PASSWORD@db/x"' in printed


SECRET_STACK = {
    "CW_NATS_URL": "nats://operator:nats-S3cret@127.0.0.1:4333",
    "CW_DATABASE_URL": "postgresql://postgres@127.0.0.1:5444/chuangwei",
    "CW_READER_DATABASE_URL": "postgresql://cw_reader:pg-S3cret@127.0.0.1:5444/chuangwei",
}
URL_SETTINGS = ("CW_NATS_URL", "CW_DATABASE_URL", "CW_READER_DATABASE_URL")


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return int(done.stdout)


def test_a_command_uses_the_stack_of_a_live_cw_dev_and_never_shows_a_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    written = write_stack_file(tmp_path, SECRET_STACK)  # by this process, alive
    assert written == tmp_path / ".cw" / "stack.env"
    assert written.stat().st_mode & 0o777 == 0o600
    monkeypatch.chdir(tmp_path)
    # What the command sets in the environment must not outlive the test (a worker runs more).
    monkeypatch.setattr(os, "environ", {**os.environ})
    for name in URL_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    _use_the_stack_of_cw_dev("report")
    assert {name: os.environ.get(name) for name in URL_SETTINGS} == SECRET_STACK
    said = capsys.readouterr().err
    assert said.startswith(f"cw report: using the stack cw dev started (pid {os.getpid()}): ")
    assert "nats://operator:***@127.0.0.1:4333" in said and "S3cret" not in said
    assert said.count("\n") == 1


def test_a_url_that_is_set_or_a_dead_cw_dev_leaves_the_stack_file_unused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    # What the command sets in the environment must not outlive the test (a worker runs more).
    monkeypatch.setattr(os, "environ", {**os.environ})
    for name in URL_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    write_stack_file(tmp_path, SECRET_STACK)
    monkeypatch.setenv("CW_DATABASE_URL", "postgresql://me@db/mine")
    _use_the_stack_of_cw_dev("report")
    assert "CW_NATS_URL" not in os.environ
    monkeypatch.delenv("CW_DATABASE_URL")
    write_stack_file(tmp_path, SECRET_STACK, pid=_dead_pid())  # cw dev was killed: stale
    assert running_stack(tmp_path) is None
    _use_the_stack_of_cw_dev("report")
    assert "CW_NATS_URL" not in os.environ and "CW_DATABASE_URL" not in os.environ
    assert capsys.readouterr().err == ""
    remove_stack_file(tmp_path)  # not this process's: kept
    assert (tmp_path / ".cw" / "stack.env").exists()
    write_stack_file(tmp_path, SECRET_STACK)
    remove_stack_file(tmp_path)  # its own, and .cw/ held nothing else
    assert not (tmp_path / ".cw").exists()


def test_the_stack_file_reads_as_a_shell_reads_it(tmp_path: Path) -> None:
    env = {
        **SECRET_STACK,
        "CW_DATABASE_URL": "postgresql://u:p'w$x@db/chuangwei?sslmode=require&a=1",
    }
    path = write_stack_file(tmp_path, env)
    found = running_stack(tmp_path)
    assert found is not None and found.env == env
    shell = subprocess.run(
        ["sh", "-c", f'set -a; . "{path}"; printf %s "$CW_DATABASE_URL"'],
        capture_output=True, text=True, check=True, env={},
    )  # fmt: skip
    assert shell.stdout == env["CW_DATABASE_URL"]
