"""``cw dev``'s services as child processes, kept running.

Each service runs in a process group of its own, its output lines prefixed with its name. A
service that exits is reported (name, exit status, its last lines) and started again after a
pause that grows with the project's retry policy (:class:`~services.common.retry.RetryPolicy`:
doubling from ``first_s`` up to ``cap_s``, with jitter); a run that lasted ``STEADY_S`` resets
the pause. Cancelling :func:`supervise` stops every service it started, and only those.
"""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import NoReturn, Protocol

from services.common.retry import RetryPolicy
from services.devstack.system import die_with_parent

Say = Callable[[str], None]
Sleep = Callable[[float], Awaitable[None]]

#: Restarts: the retry policy's shape, from 0.2 s (as when waiting for a server) up to 5 s.
RESTART = RetryPolicy(first_s=0.2)
#: A run at least this long was not a crash loop: the next pause starts from ``first_s`` again.
STEADY_S = 30.0
#: How long a stopped service's output may take to come through before it is dropped.
STOP_OUTPUT_S = 5.0
#: How many of its last output lines a service's exit report repeats.
TAIL_LINES = 10


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """A service as ``cw dev`` starts it: a name, a command and the environment it adds."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str]


class Child(Protocol):
    """What the supervisor needs of a service's process (a fake one in the unit tests)."""

    name: str

    def start(self) -> int:
        """Start the process; its pid."""
        ...

    async def finished(self, say: Say) -> int:
        """Copy the output until the process ends; its exit status."""
        ...

    def tail(self) -> list[str]:
        """The last lines of the output of the latest run."""
        ...

    def running(self) -> bool: ...

    async def stop(self) -> None:
        """Interrupt, then terminate, then kill the process (only it)."""
        ...


class ServiceProcess:
    """One service as a child process in its own process group, output lines prefixed."""

    def __init__(self, spec: ServiceSpec, width: int) -> None:
        self.name = spec.name
        self.argv = list(spec.argv)
        self.env = dict(spec.env)
        self.prefix = f"{spec.name:<{width}} | "
        self.proc: subprocess.Popen[bytes] | None = None
        self._tail: deque[str] = deque(maxlen=TAIL_LINES)

    def start(self) -> int:
        self._tail.clear()
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
        return self.proc.pid

    async def finished(self, say: Say) -> int:
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
                    raw = await reader.readline()
                except ValueError:  # a line longer than the limit: take what is there
                    raw = await reader.read(1 << 20)
                if not raw:
                    break
                line = raw.decode(errors="replace").rstrip("\n")
                self._tail.append(line)
                say(self.prefix + line)
        finally:
            transport.close()
        return await asyncio.to_thread(proc.wait)

    def tail(self) -> list[str]:
        return list(self._tail)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    async def stop(self) -> None:
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


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


def restart_pause(failures: int, policy: RetryPolicy = RESTART) -> float:
    """The pause before restart number ``failures`` (1, 2, ...) of a crash loop."""
    base = min(policy.cap_s, policy.first_s * 2.0 ** max(failures - 1, 0))
    return base + random.uniform(0, policy.first_s)


async def keep_running(
    child: Child,
    say: Say,
    stopping: asyncio.Event,
    *,
    policy: RetryPolicy = RESTART,
    sleep: Sleep = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Run ``child``, and start it again each time it exits, until ``stopping`` is set."""
    failures = 0
    while not stopping.is_set():
        started = clock()
        pid = child.start()
        say(f"cw dev: started {child.name} (pid {pid})")
        code = await child.finished(say)
        if stopping.is_set():
            say(f"cw dev: {child.name} {describe_exit(code)}")
            return
        failures = 1 if clock() - started >= STEADY_S else failures + 1
        pause = restart_pause(failures, policy)
        say(f"cw dev: {child.name} {describe_exit(code)}; restarting in {pause:.1f}s")
        tail = child.tail()
        if tail:
            say(f"cw dev: {child.name}'s last {len(tail)} lines:")
            for line in tail:
                say(f"    {line}")
        await sleep(pause)


async def supervise(
    children: Sequence[Child],
    say: Say,
    *,
    policy: RetryPolicy = RESTART,
    sleep: Sleep = asyncio.sleep,
) -> NoReturn:
    """Keep every child running until cancelled; then stop them (last started first) and
    re-raise the cancellation."""
    stopping = asyncio.Event()
    tasks = [
        asyncio.create_task(
            keep_running(child, say, stopping, policy=policy, sleep=sleep), name=child.name
        )
        for child in children
    ]
    try:
        # Not gather(): cancelling it would cancel the tasks before their children stop.
        # A task ends early only by raising (a command that cannot start): that ends cw dev.
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            task.result()
        if not tasks:
            await asyncio.Event().wait()
        raise AssertionError("unreachable: the services are kept running until cancelled")
    finally:
        stopping.set()
        for task, child in zip(tasks, children, strict=True):
            if not child.running():  # pausing before a restart: no more restarts
                task.cancel()
        for child in reversed(children):
            if child.running():
                say(f"cw dev: stopping {child.name}")
                await child.stop()
        # The tasks let the output still in the pipes through, then end.
        for task in tasks:
            if task.done():
                continue
            try:
                await asyncio.wait_for(asyncio.shield(task), STOP_OUTPUT_S)
            except TimeoutError:
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def run_services(specs: Sequence[ServiceSpec], say: Say) -> NoReturn:
    """Run the services as child processes, kept running, until cancelled."""
    width = max((len(spec.name) for spec in specs), default=0)
    await supervise([ServiceProcess(spec, width) for spec in specs], say)
