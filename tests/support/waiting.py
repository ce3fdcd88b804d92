"""Waiting in tests: for a condition, with a deadline, never for a fixed time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Literal, TypeVar, overload

T = TypeVar("T")
POLL_S = 0.02


class NotInTime(AssertionError):
    """The condition did not hold before the deadline."""


@overload
async def eventually(
    check: Callable[[], Awaitable[bool]],
    *,
    within: float,
    what: str | Callable[[], str],
    running: Sequence[asyncio.Task[object]] = (),
) -> Literal[True]: ...


@overload
async def eventually(
    check: Callable[[], Awaitable[T | None]],
    *,
    within: float,
    what: str | Callable[[], str],
    running: Sequence[asyncio.Task[object]] = (),
) -> T: ...


async def eventually(
    check: Callable[[], Awaitable[object]],
    *,
    within: float,
    what: str | Callable[[], str],
    running: Sequence[asyncio.Task[object]] = (),
) -> object:
    """Poll ``check`` until it returns something truthy, and return that.

    Fails with ``what`` (a message, or a function giving it when the wait fails) and the last
    value once ``within`` seconds have passed, and at once when a task of ``running`` has ended:
    its exception is re-raised, and a task that returned is a failure too (it should be running).
    """
    deadline = time.monotonic() + within
    while True:
        value = await check()
        if value:
            return value
        for task in running:
            if task.done():
                if not task.cancelled() and task.exception() is not None:
                    task.result()
                raise AssertionError(f"{_say(what)}: {task.get_name()} ended while waiting")
        if time.monotonic() >= deadline:
            raise NotInTime(f"{_say(what)}: not within {within}s (last: {value!r})")
        await asyncio.sleep(POLL_S)


def _say(what: str | Callable[[], str]) -> str:
    return what if isinstance(what, str) else what()
