"""Running coroutines from the command line: uvloop, and a garbage collector tuned for batches."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Coroutine
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
