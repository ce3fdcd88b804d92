"""``cw dev`` with real processes: own servers start, answer, stop, leave nothing; a service
that dies is restarted; Ctrl-C stops what it started."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import asyncpg
import nats
import pytest

from services.devstack.cli import DevService, dev, psql_command
from services.devstack.stack import DATABASE, LocalStack
from services.devstack.supervisor import ServiceSpec, run_services
from services.devstack.system import LOCALHOST, port_answers, postgres_fallback_dir
from tests.support.processes import ROOT, cw
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

ACCOUNT_FILES = [Path("/etc/passwd"), Path("/etc/group"), Path("/etc/shadow")]


def _fingerprint() -> dict[Path, str]:
    return {
        f: hashlib.sha256(f.read_bytes()).hexdigest()
        for f in ACCOUNT_FILES
        if f.exists() and os.access(f, os.R_OK)
    }


def _processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline:
            found.append(int(entry.name))
    return found


def _uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[2])  # effective uid
    raise AssertionError(f"no Uid line for {pid}")


async def test_own_stack_answers_stops_cleanly_and_is_reused(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    accounts_before = _fingerprint()
    stack = LocalStack(project, own=True, durable=False)
    try:
        async with stack:
            assert stack.nats is not None
            assert stack.postgres is not None
            nc = await nats.connect(stack.nats_url)
            try:
                info = await nc.jetstream().account_info()
                assert info.limits is not None
                await nc.publish("cw.devstack.test", b"hello")
                await nc.flush()
            finally:
                await nc.close()

            conn = await asyncpg.connect(stack.database_url)
            try:
                assert await conn.fetchval("select 1") == 1
                assert await conn.fetchval("select current_database()") == DATABASE
                await conn.execute("CREATE VIEW phase_summary AS SELECT 'own' AS answered_by")
            finally:
                await conn.close()

            # The psql line cw dev prints works as it is pasted, on the stack's own port.
            psql = psql_command(stack)
            assert f"postgresql://postgres@{LOCALHOST}:{stack.postgres.port}/{DATABASE}" in psql
            pasted = await asyncio.to_thread(
                subprocess.run, ["sh", "-c", psql], capture_output=True, text=True, timeout=60
            )
            assert pasted.returncode == 0, pasted.stderr
            assert "answered_by" in pasted.stdout and "own" in pasted.stdout

            if os.geteuid() == 0:  # PostgreSQL refuses root: it must run as someone else
                assert stack.postgres.pid is not None
                assert _uid_of(stack.postgres.pid) != 0
            assert stack.postgres.initialised
            ports = [stack.nats.port, stack.nats.monitor_port, stack.postgres.port]
            data_dir = str(stack.postgres.data_dir)
            store = str(stack.nats.store)
            assert all(port_answers(LOCALHOST, p) for p in ports)

        assert not [p for p in ports if port_answers(LOCALHOST, p)]
        assert _processes_mentioning(data_dir) == []
        assert _processes_mentioning(store) == []

        # The next start reuses the cluster (no initdb), its database, and the ports.
        async with LocalStack(project, own=True, durable=False) as again:
            assert again.postgres is not None
            assert again.nats is not None
            assert not again.postgres.initialised
            assert [again.nats.port, again.nats.monitor_port, again.postgres.port] == ports
            conn = await asyncpg.connect(again.database_url)
            try:
                assert await conn.fetchval("select current_database()") == DATABASE
            finally:
                await conn.close()
        assert _processes_mentioning(data_dir) == []
    finally:
        await stack.stop()
        if stack.postgres is not None:  # as root it may live outside tmp_path
            shutil.rmtree(stack.postgres.root, ignore_errors=True)
    assert _fingerprint() == accounts_before


def _flaky_service(runs: Path, marker: str, dies: int) -> list[str]:
    """A tiny fake service: its first ``dies`` runs print and exit with status 3, the next
    one says it is up, with its metrics port, and runs until stopped."""
    script = f"""
import os, pathlib, sys, time  # {marker}
runs = pathlib.Path({str(runs)!r})
with runs.open("a") as f:
    f.write("run\\n")
n = len(runs.read_text().splitlines())
if n <= {dies}:
    print(f"run {{n}}: cannot start", flush=True)
    sys.exit(3)
print(f"up on metrics port {{os.environ.get('CW_METRICS_PORT')}}", flush=True)
time.sleep(600)
"""
    return [sys.executable, "-c", script]


async def test_a_service_that_dies_is_restarted_and_cancelling_stops_everything(
    tmp_path: Path,
) -> None:
    lines: list[str] = []
    marker = f"cw-devstack-flaky-{os.getpid()}"
    specs = [
        ServiceSpec("flaky", _flaky_service(tmp_path / "runs", marker, dies=2), dict(os.environ)),
        ServiceSpec(
            "sleeper",
            [
                sys.executable,
                "-c",
                f"import time; print('up', flush=True); time.sleep(600)  # {marker}",
            ],
            dict(os.environ),
        ),
    ]
    task = asyncio.create_task(run_services(specs, lines.append))

    async def up_again() -> bool:
        return any(line.startswith("flaky   | up on metrics port") for line in lines)

    await eventually(up_again, within=30, what=lambda: "\n".join(lines), running=[task])
    assert "flaky   | run 1: cannot start" in lines
    assert "flaky   | run 2: cannot start" in lines
    assert sum("flaky exited with status 3; restarting in" in line for line in lines) == 2
    assert "    run 2: cannot start" in lines  # the exit report repeats the last lines
    assert "sleeper | up" in lines
    assert sum("started sleeper" in line for line in lines) == 1  # the others keep running
    assert len(_processes_mentioning(marker)) == 2

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert _processes_mentioning(marker) == []
    assert (tmp_path / "runs").read_text().count("run") == 3  # nothing restarted on the way out


async def test_cw_dev_restarts_a_service_and_ctrl_c_stops_what_it_started(
    tmp_path: Path,
    nats_url: str,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CW_NATS_URL", nats_url)
    monkeypatch.setenv("CW_DATABASE_URL", database_url)
    monkeypatch.delenv("CW_METRICS_PORT", raising=False)
    # A role of this test's own (roles are shared by the whole cluster).
    role, password = f"cw_reader_{os.getpid()}", "dev-Reader-Pw"
    monkeypatch.setenv("CW_READER_ROLE", role)
    monkeypatch.setenv("CW_READER_PASSWORD", password)
    marker = f"cw-dev-flaky-{os.getpid()}"
    out: list[str] = []

    def output() -> str:
        out.append(capsys.readouterr().out)
        return "".join(out)

    with socket.socket() as busy:  # the service's default metrics port is taken
        busy.bind((LOCALHOST, 0))
        busy.listen()
        taken = busy.getsockname()[1]
        fake = DevService("flaky", _flaky_service(tmp_path / "runs", marker, dies=1), taken)
        task = asyncio.create_task(dev(project_dir=tmp_path, services=[fake]))

        async def up_again() -> bool:
            return "flaky | up on metrics port" in output()

        await eventually(up_again, within=60, what=output, running=[task])
        text = output()
        assert "init: " in text  # cw init ran before the services
        assert """ "$CW_DATABASE_URL" -c 'select * from phase_summary'""" in text
        assert "flaky exited with status 3; restarting in" in text
        assert f"port {taken} is taken: a free one instead" in text
        assert f"up on metrics port {taken}" not in text
        assert len(_processes_mentioning(marker)) == 1
        # cw report works on cw dev's stack, as the read-only role, from the line it printed.
        assert password not in text
        report = next(line for line in text.splitlines() if "the bureau's reports:" in line)
        pasted = await asyncio.to_thread(
            subprocess.run,
            ["sh", "-c", report.split("reports:", 1)[1].strip() + " summary --format json"],
            capture_output=True, text=True, timeout=60, cwd=ROOT,
        )  # fmt: skip
        assert pasted.returncode == 0, pasted.stderr

        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C
        assert await asyncio.wait_for(task, 30) == 0
    assert "cw dev: stopped" in output()
    assert _processes_mentioning(marker) == []
    assert not (tmp_path / ".cw").exists()  # configured servers: nothing of its own started
    admin = await asyncpg.connect(database_url)
    try:
        await admin.execute(f"DROP OWNED BY {role}")
        await admin.execute(f"DROP ROLE {role}")
    finally:
        await admin.close()


async def test_the_database_fixture_gives_an_empty_database(database_url: str) -> None:
    # Whichever server conftest found or started (CW_TEST_OWN_POSTGRES=1: its own).
    conn = await asyncpg.connect(database_url)
    try:
        tables = await conn.fetchval(
            "select count(*) from information_schema.tables where table_schema = 'public'"
        )
        assert tables == 0
    finally:
        await conn.close()


_WHO_AM_I = """
import asyncio, os, time, urllib.parse  # {marker}
import asyncpg
async def main():
    conn = await asyncpg.connect(os.environ["CW_DATABASE_URL"])
    row = await conn.fetchrow(
        "SELECT current_user AS who, rolsuper, rolcreaterole, rolcreatedb FROM pg_roles "
        "WHERE rolname = current_user")
    await conn.close()
    print("runs as", row["who"], "super", row["rolsuper"], "createrole", row["rolcreaterole"],
          "createdb", row["rolcreatedb"], flush=True)
asyncio.run(main())
time.sleep(600)
"""


async def test_cw_dev_runs_the_services_as_the_least_privileged_role(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("CW_NATS_URL", "CW_DATABASE_URL", "CW_READER_PASSWORD", "CW_METRICS_PORT"):
        monkeypatch.delenv(name, raising=False)
    marker = f"cw-dev-whoami-{os.getpid()}"
    fake = DevService("whoami", [sys.executable, "-c", _WHO_AM_I.format(marker=marker)], 0)
    out: list[str] = []

    def output() -> str:
        out.append(capsys.readouterr().out)
        return "".join(out)

    task = asyncio.create_task(dev(own=True, project_dir=tmp_path, services=[fake]))
    try:

        async def said() -> bool:
            return "whoami | runs as" in output()

        await eventually(said, within=120, what=output, running=[task])
        text = output()
        assert "whoami | runs as cw_service super False createrole False createdb False" in text
        assert "db setup: role cw_service: created" in text
        assert "init: read-only role cw_reader: granted the public views" in text
        password_file = tmp_path / ".cw" / "service-password"
        assert password_file.stat().st_mode & 0o777 == 0o600
        assert password_file.read_text().strip() not in text
    finally:
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C
        assert await asyncio.wait_for(task, 60) == 0
        data = tmp_path / ".cw"
        shutil.rmtree(postgres_fallback_dir(data / "postgres"), ignore_errors=True)  # as root
        shutil.rmtree(data, ignore_errors=True)
    assert _processes_mentioning(marker) == []


_STACK_ONLY = """
import asyncio, sys
from pathlib import Path
from services.devstack.cli import dev
sys.exit(asyncio.run(dev(own=True, stack_only=True, project_dir=Path(sys.argv[1]))))
"""


def _stack_only(project: Path, log: Path) -> subprocess.Popen[bytes]:
    """``cw dev --own --stack-only`` in a process of its own, for ``project``."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-c", _STACK_ONLY, str(project)],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip


async def test_cw_commands_from_the_project_folder_use_the_running_cw_dev_and_a_second_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """make run ARGS=--own in one shell; in another, from the project folder, with no CW_* set:
    a command uses that stack (and says so), a second cw dev --print-env says in one line that
    one runs (a traceback before: its PostgreSQL would not start on the same data)."""
    project = tmp_path / "project"
    project.mkdir()
    for name in ("CW_NATS_URL", "CW_DATABASE_URL", "CW_READER_PASSWORD", "CW_READER_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    log = tmp_path / "cw-dev.log"
    first = _stack_only(project, log)
    stack_env = project / ".cw" / "stack.env"

    async def written() -> bool:
        assert first.poll() is None, log.read_text()
        return stack_env.exists()

    try:
        await eventually(written, within=120, what=log.read_text)
        assert stack_env.stat().st_mode & 0o777 == 0o600
        settings = dict(w.split("=", 1) for w in shlex.split(stack_env.read_text()))
        assert settings["CW_DEV_PID"] == str(first.pid)
        # The read model, made the way the tests make it: both URLs given.
        done = await asyncio.to_thread(cw, {**os.environ, **settings}, "init")
        assert done.returncode == 0, done.stderr

        # From the project folder, neither URL set: cw dev's stack, not the machine's servers.
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "services.cli", "report", "summary", "--format", "json"],
            cwd=project, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stderr.startswith(
            f"cw report: using the stack cw dev started (pid {first.pid}): NATS "
            f"{settings['CW_NATS_URL']}, PostgreSQL {settings['CW_DATABASE_URL']}"
        ), done.stderr

        code = await asyncio.wait_for(dev(own=True, print_env=True, project_dir=project), 120)
        said = capsys.readouterr()
        assert code == 2, said.err
        assert said.out == ""  # nothing for a shell to take as settings
        assert said.err.count("\n") == 1 and "Traceback" not in said.err, said.err
        assert f"cw dev (pid {first.pid}) is running this project's stack" in said.err

        first.send_signal(signal.SIGINT)  # Ctrl-C
        assert await asyncio.to_thread(first.wait, 60) == 0, log.read_text()
        assert not stack_env.exists()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(30)
        data = project / ".cw"
        shutil.rmtree(postgres_fallback_dir(data / "postgres"), ignore_errors=True)  # as root
        shutil.rmtree(data, ignore_errors=True)
