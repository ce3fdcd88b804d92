"""A long-running service's runner (what ``cw run NAME`` runs) as a task of the test's loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from services.common.settings import Settings

M = TypeVar("M")


@contextlib.asynccontextmanager
async def service_in_process(
    runner: Callable[[Settings, M, asyncio.Event], Awaitable[None]], settings: Settings, metrics: M
) -> AsyncIterator[asyncio.Task[None]]:
    """``runner`` as a task; asked to stop on the way out, cancelled after 30 s."""
    stop = asyncio.Event()
    task = asyncio.ensure_future(runner(settings, metrics, stop))
    try:
        yield task
    finally:
        stop.set()
        done, _ = await asyncio.wait({task}, timeout=30)
        if not done:
            task.cancel()
        with contextlib.suppress(BaseException):
            await task
