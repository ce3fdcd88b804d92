"""Running coroutines from the command line: uvloop, and a garbage collector tuned for batches."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Awaitable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

# A batch allocates tens of thousands of short-lived objects (messages, models, rows); with the
# default threshold (700) the collector runs every few dozen events and rescans everything that
# lives longer. Measured in bench/projector_throughput.py: about a third more events per second.
GC_THRESHOLDS = (200_000, 50, 1000)


def tune_gc() -> None:
    gc.freeze()  # what exists at start-up lives for the whole process: never scan it again
    gc.set_threshold(*GC_THRESHOLDS)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on uvloop: the event loop is a measurable share of the projector's time."""
    tune_gc()
    try:
        import uvloop  # noqa: PLC0415
    except ImportError:  # pragma: no cover - uvloop is absent on Windows only
        return asyncio.run(coro)
    return uvloop.run(coro)


async def unless_stopped(work: Awaitable[object], stop: asyncio.Event) -> bool:
    """Run ``work`` unless ``stop`` is set first (then cancel it); whether it ran to its end.

    For waits that can last for ever, such as a standby waiting for the write lock: SIGTERM
    must still end the service at once."""
    task = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
    if task.done():
        task.result()
        return True
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return False
