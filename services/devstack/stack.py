"""The local stack of ``cw dev``: a NATS with JetStream and a PostgreSQL, found or started.

For each of the two, in order:

1. the URL in ``CW_NATS_URL`` / ``CW_DATABASE_URL``, when set;
2. a server already answering on the standard local port (NATS 4222 with JetStream; PostgreSQL
   5432 accepting user ``postgres``, where database ``chuangwei`` is created if missing);
3. an own server, data under ``<project>/.cw/`` (reused on the next start), on free ports.

``own=True`` skips 1 and 2; ``secure`` skips them for NATS, whose own server then lets
in only its users, each with its own permissions (:mod:`services.devstack.secure`), and
``nats_url`` is the operator's. Leaving the ``async with`` stops the servers it started, and only
those::

    async with LocalStack(project_dir, own=True) as stack:
        stack.nats_url, stack.database_url
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Self

import asyncpg
import nats

from services.common.connect import mask_url
from services.devstack.secure import SecureNats
from services.devstack.servers import OwnNats, OwnPostgres, create_database
from services.devstack.system import LOCALHOST, free_port, port_answers

DATABASE = "chuangwei"
STANDARD_NATS_PORT = 4222
STANDARD_POSTGRES_PORT = 5432

Say = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def project_root() -> Path:
    """The checkout this code runs from (where pyproject.toml is), else the working folder."""
    here = Path(__file__).resolve().parents[2]
    return here if (here / "pyproject.toml").is_file() else Path.cwd()


async def nats_problem(url: str) -> str | None:
    """Why ``url`` is not a usable NATS with JetStream, or ``None`` when it is."""

    async def _ignore(_: Exception) -> None:
        pass

    try:
        nc = await nats.connect(
            url,
            connect_timeout=2,
            allow_reconnect=False,
            max_reconnect_attempts=0,
            error_cb=_ignore,
        )
    except Exception as exc:
        return f"cannot connect: {exc or type(exc).__name__}"
    try:
        await nc.jetstream().account_info()
    except Exception as exc:
        return f"no JetStream: {exc or type(exc).__name__}"
    finally:
        with contextlib.suppress(Exception):
            await nc.close()
    return None


async def postgres_problem(admin_url: str) -> str | None:
    """Why ``admin_url`` does not reach a PostgreSQL, or ``None`` when it does."""
    try:
        conn = await asyncpg.connect(admin_url, timeout=3)
    except Exception as exc:
        return f"cannot connect: {exc or type(exc).__name__}"
    await conn.close()
    return None


class LocalStack:
    """A NATS and a PostgreSQL for local development; see the module's documentation.

    ``data_dir``: where own servers keep their data (default ``<project_dir>/.cw``): NATS in
    ``nats/``, PostgreSQL in ``postgres/`` (elsewhere when root and that is unreachable by the
    account PostgreSQL runs as; ``notes`` then says where). ``durable=False``: fsync off (for
    throwaway stacks)."""

    def __init__(
        self,
        project_dir: Path,
        *,
        own: bool = False,
        environ: Mapping[str, str] | None = None,
        data_dir: Path | None = None,
        durable: bool = True,
        say: Say = _quiet,
        secure: Callable[[Path], SecureNats] | None = None,
    ) -> None:
        """``secure``: makes the users of a secured NATS in the data folder (``secure_nats``
        with the settings' durables); ``None``: a NATS that lets anyone in."""
        self.project_dir = project_dir.absolute()
        self.data_dir = (data_dir or self.project_dir / ".cw").absolute()
        self.own = own
        self.environ = dict(os.environ if environ is None else environ)
        self.durable = durable
        self.say = say
        self.nats: OwnNats | None = None
        self.postgres: OwnPostgres | None = None
        self._secure = secure
        self.secure: SecureNats | None = None
        """The secured NATS's users, once started with ``secure``."""
        self._nats_url: str | None = None
        self._database_url: str | None = None
        #: One line per server: where it is and where it comes from.
        self.notes: list[str] = []

    @property
    def nats_url(self) -> str:
        if self._nats_url is None:
            raise RuntimeError("the stack is not up")
        return self._nats_url

    @property
    def database_url(self) -> str:
        if self._database_url is None:
            raise RuntimeError("the stack is not up")
        return self._database_url

    @property
    def env(self) -> dict[str, str]:
        """The ``CW_*`` variables that point a service at this stack."""
        return {"CW_NATS_URL": self.nats_url, "CW_DATABASE_URL": self.database_url}

    @property
    def ports_file(self) -> Path:
        """The ports own servers used last time: reused when free, so URLs stay the same."""
        return self.data_dir / "ports.json"

    def _saved_ports(self) -> dict[str, int]:
        try:
            saved = json.loads(self.ports_file.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(saved, dict):
            return {}
        return {k: v for k, v in saved.items() if isinstance(v, int)}

    def _save_ports(self) -> None:
        ports = self._saved_ports()
        if self.nats is not None:
            ports.update(nats=self.nats.port, nats_monitor=self.nats.monitor_port)
        if self.postgres is not None:
            ports.update(postgres=self.postgres.port)
        with contextlib.suppress(OSError):
            self.ports_file.write_text(json.dumps(ports, indent=2) + "\n")

    # --------------------------------------------------------------------------------------
    async def start(self) -> Self:
        try:
            self._nats_url = await self._resolve_nats()
            self._database_url = await self._resolve_postgres()
        except BaseException:
            await self.stop()
            raise
        if self.nats is not None or self.postgres is not None:
            self._save_ports()
        return self

    async def stop(self) -> None:
        """Stop the servers this stack started (PostgreSQL, then NATS), and only those."""
        for server in (self.postgres, self.nats):
            if server is not None and server.proc is not None and server.proc.poll() is None:
                self.say(f"stopping {server.name} (pid {server.pid})")
                await server.astop()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # --------------------------------------------------------------------------------------
    async def _resolve_nats(self) -> str:
        if not self.own and self._secure is None:
            configured = self.environ.get("CW_NATS_URL")
            if configured:
                self.notes.append(f"NATS        {mask_url(configured)}  (from CW_NATS_URL)")
                return configured
            standard = f"nats://{LOCALHOST}:{STANDARD_NATS_PORT}"
            if port_answers(LOCALHOST, STANDARD_NATS_PORT):
                problem = await nats_problem(standard)
                if problem is None:
                    self.notes.append(f"NATS        {standard}  (already running)")
                    return standard
                self.say(f"port {STANDARD_NATS_PORT} answers but is not usable ({problem})")
        self.say("starting nats-server")
        saved = self._saved_ports()
        port = free_port(prefer=saved.get("nats"))
        monitor_port = free_port(prefer=saved.get("nats_monitor"))
        if monitor_port == port:
            monitor_port = free_port()
        if self._secure is not None:
            self.secure = self._secure(self.data_dir)
        config = self.secure.config if self.secure is not None else None
        self.nats = OwnNats(
            self.data_dir / "nats", port=port, monitor_port=monitor_port, config=config
        )
        await self.nats.astart()
        secured = f", secured: users in {config}" if config is not None else ""
        self.notes.append(
            f"NATS        {self.nats.url}  (own nats-server, pid {self.nats.pid},"
            f" monitoring {self.nats.monitor_url}, data {self.nats.store}{secured})"
        )
        if self.secure is not None:
            return self.secure.url(self.nats.url, "operator")
        return self.nats.url

    async def _resolve_postgres(self) -> str:
        if not self.own:
            configured = self.environ.get("CW_DATABASE_URL")
            if configured:
                self.notes.append(f"PostgreSQL  {mask_url(configured)}  (from CW_DATABASE_URL)")
                return configured
            admin = f"postgresql://postgres@{LOCALHOST}:{STANDARD_POSTGRES_PORT}/postgres"
            if port_answers(LOCALHOST, STANDARD_POSTGRES_PORT):
                problem = await postgres_problem(admin)
                if problem is None:
                    if await create_database(admin, DATABASE):
                        self.say(f"created database {DATABASE}")
                    url = f"postgresql://postgres@{LOCALHOST}:{STANDARD_POSTGRES_PORT}/{DATABASE}"
                    self.notes.append(f"PostgreSQL  {url}  (already running)")
                    return url
                self.say(f"port {STANDARD_POSTGRES_PORT} answers but is not usable ({problem})")
        self.say("starting postgres")
        pg = OwnPostgres(
            self.data_dir / "postgres",
            port=free_port(prefer=self._saved_ports().get("postgres")),
            durable=self.durable,
            say=self.say,
        )
        self.postgres = pg
        await pg.astart()
        if pg.location_note:
            self.say(pg.location_note)
        if await create_database(pg.admin_url, DATABASE):
            self.say(f"created database {DATABASE}")
        assert pg.binaries is not None
        runs_as = f", runs as {pg.account.name}" if pg.account else ""
        self.notes.append(
            f"PostgreSQL  {pg.url(DATABASE)}  (own postgres {pg.binaries.version()} from"
            f" {pg.binaries.bindir}, pid {pg.pid}{runs_as}, data {pg.data_dir},"
            f" log {pg.log_path})"
        )
        return pg.url(DATABASE)
