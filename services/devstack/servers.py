"""Own NATS and PostgreSQL servers as child processes, for ``cw dev`` and the tests.

Both can be used synchronously (``with OwnPostgres(root) as pg:``) or from asyncio
(``async with OwnPostgres(root) as pg:``). Servers are started in their own process group (a
Ctrl-C in the terminal reaches ``cw dev`` only, which then stops them in order) and, on Linux,
are told to stop when their parent dies. ``stop()`` stops only the process that was started.

PostgreSQL refuses to run as root. When this process is root, initdb and postgres run as an
existing unprivileged account (see :func:`~services.devstack.system.unprivileged_account`) and
the server's folder is given to that account; if that account cannot reach the folder (e.g. a
project under a private ``mktemp -d``), the folder moves to a world-enterable temporary folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self, TypedDict

import asyncpg

from services.devstack.system import (
    LOCALHOST,
    Account,
    PostgresBinaries,
    die_with_parent,
    find_postgres_binaries,
    first_closed_folder,
    free_port,
    nats_server_binary,
    port_answers,
    postgres_fallback_dir,
    unprivileged_account,
)

Say = Callable[[str], None]

#: Longest unix socket path Linux accepts (``sun_path`` is 108 bytes with the NUL).
_MAX_SOCKET_PATH = 107

_PG_HBA = """\
# Written by chuangwei's cw dev: trust, and from this machine only.
# TYPE  DATABASE  USER  ADDRESS        METHOD
local   all       all                  trust
host    all       all   127.0.0.1/32   trust
"""


def _quiet(_: str) -> None:
    pass


class ServerError(RuntimeError):
    """A server could not be prepared, started or stopped."""


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class _Server:
    """One server process: spawn, wait until ready, stop."""

    name = "server"
    stop_signals: Sequence[tuple[signal.Signals, float]] = ((signal.SIGTERM, 15.0),)
    start_timeout = 60.0

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None

    # to be provided by subclasses --------------------------------------------------------
    def prepare(self) -> None:
        """Blocking preparation (folders, initdb); may run in a worker thread."""

    def spawn(self) -> None:
        raise NotImplementedError

    def is_ready(self) -> bool:
        raise NotImplementedError

    # shared ------------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def _popen(
        self,
        argv: list[str],
        *,
        log: Path,
        cwd: Path,
        env: dict[str, str] | None = None,
        account: Account | None = None,
        death_signal: signal.Signals = signal.SIGTERM,
    ) -> None:
        self.log_path = log
        with open(log, "ab") as out:
            if account is not None:
                os.chown(log, account.uid, account.gid)
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=env,
                process_group=0,
                # Only a prctl() call, and Popen runs on the main thread: safe enough.
                preexec_fn=die_with_parent(death_signal),  # noqa: PLW1509
                **_drop_to(account),
            )

    def _check_alive(self) -> None:
        if self.proc is None:
            raise ServerError(f"{self.name} was not started")
        code = self.proc.poll()
        if code is not None:
            log = f"\n--- {self.log_path} ---\n{_tail(self.log_path)}" if self.log_path else ""
            raise ServerError(f"{self.name} exited with code {code} while starting{log}")

    def _poll_ready(self) -> bool:
        self._check_alive()
        return self.is_ready()

    def start(self) -> Self:
        self.prepare()
        self.spawn()
        try:
            deadline = time.monotonic() + self.start_timeout
            while not self._poll_ready():
                if time.monotonic() > deadline:
                    raise ServerError(f"{self.name} not ready after {self.start_timeout:.0f}s")
                time.sleep(0.05)
        except BaseException:
            self.stop()
            raise
        return self

    async def astart(self) -> Self:
        # Preparation may take seconds (initdb): a worker thread keeps the loop responsive. The
        # server itself is spawned from the loop's thread, which outlives it (die_with_parent).
        await asyncio.to_thread(self.prepare)
        self.spawn()
        try:
            deadline = time.monotonic() + self.start_timeout
            while not self._poll_ready():
                if time.monotonic() > deadline:
                    raise ServerError(f"{self.name} not ready after {self.start_timeout:.0f}s")
                await asyncio.sleep(0.05)
        except BaseException:
            await self.astop()
            raise
        return self

    def _signal_steps(self) -> list[tuple[signal.Signals, float]]:
        return [*self.stop_signals, (signal.SIGKILL, 10.0)]

    def stop(self) -> int | None:
        """Stop the started process (only it) and wait for it; returns its exit code."""
        proc = self.proc
        if proc is None:
            return None
        for sig, grace in self._signal_steps():
            if proc.poll() is not None:
                break
            proc.send_signal(sig)
            if _wait(proc, grace) is not None:
                break
        return proc.wait()

    async def astop(self) -> int | None:
        """``stop`` in a worker thread: its waits would block the event loop."""
        return await asyncio.to_thread(self.stop)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return await self.astart()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.astop()


class _Credentials(TypedDict, total=False):
    user: int
    group: int
    extra_groups: list[int]


def _wait(proc: subprocess.Popen[bytes], seconds: float) -> int | None:
    try:
        return proc.wait(seconds)
    except subprocess.TimeoutExpired:
        return None


def _drop_to(account: Account | None) -> _Credentials:
    """``subprocess`` arguments that run the child as ``account`` (only needed from root)."""
    if account is None or account.uid == os.geteuid():
        return {}
    return {"user": account.uid, "group": account.gid, "extra_groups": []}


# -------------------------------------------------------------------------------------------
# NATS


class OwnNats(_Server):
    """nats-server with JetStream, storing in ``store``, on 127.0.0.1 and free ports."""

    name = "nats-server"

    def __init__(
        self,
        store: Path,
        *,
        port: int | None = None,
        monitor_port: int | None = None,
        user: str | None = None,
        password: str | None = None,
        config: Path | None = None,
    ) -> None:
        super().__init__()
        self.store = store
        self.config = config
        """A nats-server configuration (users, permissions); the flags here override its
        ports, address and store."""
        self.port = port or free_port()
        self.monitor_port = monitor_port or free_port()
        self.user, self.password = user, password

    @property
    def url(self) -> str:
        """The client URL, with the user and password when the server asks for them."""
        auth = f"{self.user}:{self.password}@" if self.user else ""
        return f"nats://{auth}{LOCALHOST}:{self.port}"

    @property
    def monitor_url(self) -> str:
        return f"http://{LOCALHOST}:{self.monitor_port}"

    def prepare(self) -> None:
        self.store.mkdir(parents=True, exist_ok=True)

    def spawn(self) -> None:
        argv = [str(nats_server_binary())]
        if self.config is not None:
            argv += ["-c", str(self.config)]
        argv += [
            "-js",
            "-sd",
            str(self.store),
            "-a",
            LOCALHOST,
            "-p",
            str(self.port),
            "-m",
            str(self.monitor_port),
        ]
        if self.user:
            argv += ["--user", self.user, "--pass", self.password or ""]
        self._popen(argv, log=self.store / "nats-server.log", cwd=self.store)

    def is_ready(self) -> bool:
        try:
            with urllib.request.urlopen(
                f"{self.monitor_url}/healthz?js-enabled-only=true", timeout=1
            ) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False


# -------------------------------------------------------------------------------------------
# PostgreSQL


class OwnPostgres(_Server):
    """A PostgreSQL cluster in ``root`` (data in ``root/data``, unix socket in ``root/run``,
    log in ``root/postgres.log``), superuser ``postgres``, trust auth, listening on 127.0.0.1
    only, on a free port. An existing cluster in ``root`` is reused.

    ``durable=False`` turns fsync off: for throwaway test clusters only. ``fallback`` (when
    root, and the account running PostgreSQL cannot reach ``root``): where to go instead;
    default a per-path folder under the temporary folder. ``location_note`` says when that
    happened."""

    name = "postgres"
    # SIGINT: "fast" shutdown (disconnect clients, checkpoint); SIGQUIT: immediate.
    stop_signals = ((signal.SIGINT, 30.0), (signal.SIGQUIT, 10.0))

    def __init__(
        self,
        root: Path,
        *,
        port: int | None = None,
        binaries: PostgresBinaries | None = None,
        durable: bool = True,
        fallback: Path | None = None,
        say: Say = _quiet,
    ) -> None:
        super().__init__()
        self.requested_root = root.absolute()
        self.root = self.requested_root
        self.fallback = fallback or postgres_fallback_dir(self.requested_root)
        self.port = port or free_port()
        self.binaries = binaries
        self.durable = durable
        self.say = say
        self.account: Account | None = None  # set when root: whom PostgreSQL runs as
        self.location_note: str | None = None
        self.initialised = False  # whether prepare() ran initdb (else: reused a cluster)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "run"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@{LOCALHOST}:{self.port}/{database}"

    @property
    def admin_url(self) -> str:
        return self.url("postgres")

    # preparation ---------------------------------------------------------------------------
    def prepare(self) -> None:
        if os.geteuid() == 0:
            self.account = self._choose_account()
            self.root = self._choose_root(self.account)
        self._make_root()
        if self.binaries is None:
            self.binaries = find_postgres_binaries(self.account)
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb(self.binaries)
            self.initialised = True
        run = self.socket_dir
        run.mkdir(mode=0o700, exist_ok=True)
        if self.account is not None:
            os.chown(run, self.account.uid, self.account.gid)

    def _choose_account(self) -> Account:
        """An existing cluster keeps its owner; otherwise an unprivileged account."""
        for candidate in (self.requested_root, self.fallback):
            try:
                st = candidate.lstat()
            except OSError:
                continue
            if st.st_uid != 0:
                return Account.from_uid(st.st_uid, st.st_gid)
        return unprivileged_account()

    def _choose_root(self, account: Account) -> Path:
        parent = self.requested_root.parent
        parent.mkdir(parents=True, exist_ok=True)
        closed = first_closed_folder(parent, account)
        if closed is None:
            return self.requested_root
        self.location_note = (
            f"PostgreSQL runs as user {account.name!r}, who cannot enter {closed}: its data is in"
            f" {self.fallback} instead of {self.requested_root}"
        )
        return self.fallback

    def _make_root(self) -> None:
        root = self.root
        with contextlib.suppress(FileExistsError):
            root.mkdir(mode=0o700)
        st = root.lstat()
        if not root.is_dir() or root.is_symlink():
            raise ServerError(f"{root} is not a folder")
        me = os.geteuid()
        if self.account is not None:
            if st.st_uid == 0:
                os.chown(root, self.account.uid, self.account.gid)
            elif st.st_uid != self.account.uid:
                raise ServerError(f"{root} belongs to uid {st.st_uid}, not {self.account.name}")
        elif st.st_uid != me:
            raise ServerError(
                f"{root} belongs to uid {st.st_uid} (an earlier run as another user?): remove"
                f" it, or run as its owner"
            )

    def _pg_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        if self.account is not None:
            env.update(HOME=str(self.root), USER=self.account.name, LOGNAME=self.account.name)
        return env

    def _initdb(self, binaries: PostgresBinaries) -> None:
        # initdb into a scratch folder that is renamed once complete: an interrupted initdb
        # never leaves a half-made cluster to be "reused".
        scratch = self.root / f"data.initdb-{os.getpid()}"
        for stale in self.root.glob("data.initdb-*"):
            shutil.rmtree(stale, ignore_errors=True)
        self.say(f"initdb: creating a PostgreSQL {binaries.version()} cluster in {self.data_dir}")
        argv = [
            str(binaries.initdb),
            "-D",
            str(scratch),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-locale",
        ]
        done = subprocess.run(
            argv,
            cwd=self.root,
            env=self._pg_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            process_group=0,
            check=False,
            **_drop_to(self.account),
        )
        if done.returncode != 0:
            shutil.rmtree(scratch, ignore_errors=True)
            raise ServerError(
                f"initdb failed ({done.returncode}):\n{done.stdout.decode(errors='replace')}"
            )
        hba = scratch / "pg_hba.conf"
        hba.write_text(_PG_HBA)
        if self.account is not None:
            os.chown(hba, self.account.uid, self.account.gid)
        scratch.rename(self.data_dir)

    # running -------------------------------------------------------------------------------
    def spawn(self) -> None:
        assert self.binaries is not None, "prepare() first"
        socket_dir = str(self.socket_dir)
        if len(f"{socket_dir}/.s.PGSQL.{self.port}") > _MAX_SOCKET_PATH:
            socket_dir = ""  # TCP only: the path is too long for a unix socket
        argv = [
            str(self.binaries.postgres),
            "-D",
            str(self.data_dir),
            "-p",
            str(self.port),
            "-c",
            f"listen_addresses={LOCALHOST}",
            "-c",
            f"unix_socket_directories={socket_dir}",
            "-c",
            "unix_socket_permissions=0700",
            "-c",
            "logging_collector=off",
        ]
        if not self.durable:
            argv += ["-c", "fsync=off", "-c", "synchronous_commit=off"]
            argv += ["-c", "full_page_writes=off"]
        self._popen(
            argv,
            log=self.root / "postgres.log",
            cwd=self.root,
            env=self._pg_env(),
            account=self.account,
            death_signal=signal.SIGINT,
        )

    def _pid_file_status(self) -> str:
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        except OSError:
            return ""
        return lines[7].strip() if len(lines) > 7 else ""

    def is_ready(self) -> bool:
        return self._pid_file_status() == "ready" and port_answers(LOCALHOST, self.port)

    async def create_database(self, name: str) -> None:
        """Create database ``name`` unless it exists."""
        await create_database(self.admin_url, name)


async def create_database(admin_url: str, name: str) -> bool:
    """Create database ``name`` through ``admin_url`` unless it exists; True if created."""
    conn = await asyncpg.connect(admin_url, timeout=10)
    try:
        if await conn.fetchval("select 1 from pg_database where datname = $1", name):
            return False
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        except asyncpg.DuplicateDatabaseError:
            return False
        return True
    finally:
        await conn.close()


__all__ = [
    "OwnNats",
    "OwnPostgres",
    "ServerError",
    "create_database",
]
