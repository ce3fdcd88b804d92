"""``cw dev``: the whole system on this machine, stopped by Ctrl-C.

Finds or starts a NATS and a PostgreSQL (see :mod:`services.devstack.stack`), creates the
streams and the read model, then runs the services as child processes, their output prefixed
with their names. Ctrl-C (or SIGTERM) stops the services, then the servers ``cw dev`` started,
and nothing else.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from services.common.runtime import run
from services.common.settings import Settings
from services.devstack.stack import LocalStack, project_root
from services.devstack.system import LOCALHOST, die_with_parent

#: The services ``cw dev`` runs: (name, command).
SERVICES: list[tuple[str, list[str]]] = [
    ("projector", [sys.executable, "-m", "services.cli", "run", "projector"]),
]
PUBLISH_EXAMPLES = ".venv/bin/cw publish contracts/examples/events.jsonl"

Say = Callable[[str], None]


def _printer(stream: TextIO) -> Say:
    def say(line: str) -> None:
        print(line, file=stream, flush=True)

    return say


class Service:
    """One service as a child process in its own process group, output lines prefixed."""

    def __init__(self, name: str, argv: Sequence[str], env: dict[str, str], width: int) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = env
        self.prefix = f"{name:<{width}} | "
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        # Started from the event loop's (main) thread: see die_with_parent.
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=self.env,
            process_group=0,
            # Only a prctl() call, and Popen runs on the main thread: safe enough.
            preexec_fn=die_with_parent(signal.SIGTERM),  # noqa: PLW1509
        )

    async def finished(self, say: Say) -> int:
        """Copy the output, prefixed, until the process ends; its exit code."""
        proc = self.proc
        assert proc is not None and proc.stdout is not None
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=1 << 20)
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), proc.stdout
        )
        try:
            while True:
                try:
                    line = await reader.readline()
                except ValueError:  # a line longer than the limit: take what is there
                    line = await reader.read(1 << 20)
                if not line:
                    break
                say(self.prefix + line.decode(errors="replace").rstrip("\n"))
        finally:
            transport.close()
        return await asyncio.to_thread(proc.wait)

    async def stop(self) -> None:
        """Interrupt, then terminate, then kill: the service's own process, and only it."""
        proc = self.proc
        if proc is None:
            return
        for sig, grace in ((signal.SIGINT, 10.0), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            if proc.poll() is not None:
                return
            proc.send_signal(sig)
            try:
                await asyncio.to_thread(proc.wait, grace)
            except subprocess.TimeoutExpired:
                continue


async def run_services(
    specs: Sequence[tuple[str, Sequence[str]]], envs: Sequence[dict[str, str]], say: Say
) -> int:
    """Run the services until one ends (its exit code, or 1 if it was 0) or until cancelled
    (then stop them all and re-raise)."""
    width = max((len(name) for name, _ in specs), default=0)
    services = [
        Service(name, argv, env, width) for (name, argv), env in zip(specs, envs, strict=True)
    ]
    watchers: dict[asyncio.Task[int], Service] = {}
    try:
        for service in services:
            service.start()
            assert service.proc is not None
            say(f"cw dev: started {service.name} (pid {service.proc.pid})")
            watchers[asyncio.create_task(service.finished(say))] = service
        if not watchers:
            await asyncio.Event().wait()
        done, _ = await asyncio.wait(watchers, return_when=asyncio.FIRST_COMPLETED)
        first = next(iter(done))
        code = first.result()
        say(f"cw dev: {watchers[first].name} exited with code {code}; stopping everything")
        return code or 1
    finally:
        for service in reversed(services):
            if service.proc is not None and service.proc.poll() is None:
                say(f"cw dev: stopping {service.name} (pid {service.proc.pid})")
                await service.stop()
        # Let the output still in the pipes through.
        await asyncio.gather(*watchers, return_exceptions=True)


def _metrics_envs(count: int, base: int) -> list[dict[str, str]]:
    """Each service its own metrics port: base, base+1, ... (0: metrics off for all)."""
    return [{"CW_METRICS_PORT": str(base + i if base else 0)} for i in range(count)]


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
    services: Sequence[tuple[str, Sequence[str]]] | None = None,
) -> int:
    """``cw dev``; see the module's documentation. Returns the exit code."""
    specs = SERVICES if services is None else services
    info = _printer(sys.stderr if print_env else sys.stdout)
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
            project_dir or project_root(),
            own=own,
            data_dir=data_dir,
            say=lambda line: info(f"cw dev: {line}"),
        )
        async with stack:
            env = stack.env
            if print_env:
                for key, value in env.items():
                    print(f"{key}={value}", flush=True)
            for note in stack.notes:
                info(f"  {note}")
            if stack_only or print_env:
                info("  export " + " ".join(f"{k}={v}" for k, v in env.items()))
                info("  (`cw init` creates the streams and the read model.) Ctrl-C stops.")
                await asyncio.Event().wait()
                return 0
            from services.common.connect import Unreachable  # noqa: PLC0415
            from services.common.entrypoints import initialise  # noqa: PLC0415

            settings = Settings(nats_url=env["CW_NATS_URL"], database_url=env["CW_DATABASE_URL"])
            try:
                lines = await initialise(settings)
            except Unreachable as exc:
                info(f"cw dev: {exc}")
                return 2
            for line in lines:
                info(f"  init: {line}")
            base_port = Settings().metrics_port
            metrics = _metrics_envs(len(specs), base_port)
            for (name, _), extra in zip(specs, metrics, strict=True):
                port = int(extra["CW_METRICS_PORT"])
                where = f"http://{LOCALHOST}:{port}/metrics" if port else "off (CW_METRICS_PORT=0)"
                info(f"  metrics     {name}: {where}")
            info(f"  publish the example events:  {_publish_hint(env)}")
            info("  Ctrl-C stops the services and what cw dev started.")
            child_envs = [
                {**os.environ, **env, **extra, "PYTHONUNBUFFERED": "1"} for extra in metrics
            ]
            return await run_services(specs, child_envs, info)
    except asyncio.CancelledError:
        if interrupted:
            info("cw dev: stopped")
            return 0
        raise
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
            " run the services. Ctrl-C stops the services and the servers cw dev started."
        ),
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
        "--data-dir",
        type=Path,
        default=None,
        help="where own servers keep their data (default: .cw/ in the project)",
    )
    p.set_defaults(handler=_dev)
