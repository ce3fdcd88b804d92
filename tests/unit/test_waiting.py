"""``eventually``: the one way tests wait."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.waiting import NotInTime, eventually

pytestmark = pytest.mark.unit


async def test_returns_the_first_truthy_value_of_the_check() -> None:
    seen: list[int] = []

    async def third() -> list[int] | None:
        seen.append(len(seen))
        return seen if len(seen) == 3 else None

    assert await eventually(third, within=30, what="three polls") == [0, 1, 2]


async def test_fails_with_what_and_the_last_value_at_the_deadline() -> None:
    async def never() -> int | None:
        return None

    with pytest.raises(NotInTime, match=r"^the answer: not within 0s \(last: None\)$"):
        await eventually(never, within=0, what="the answer")


async def test_a_message_function_says_what_was_seen_last() -> None:
    last = 0

    async def count() -> bool:
        nonlocal last
        last += 1
        return False

    with pytest.raises(AssertionError, match=r"^got to 1: not within 0s"):
        await eventually(count, within=0, what=lambda: f"got to {last}")


async def test_a_dead_task_fails_the_wait_at_once_with_its_exception() -> None:
    async def dies() -> None:
        raise RuntimeError("the projector crashed")

    async def never() -> bool:
        return False

    task = asyncio.create_task(dies())
    await asyncio.wait({task})
    with pytest.raises(RuntimeError, match="the projector crashed"):
        await eventually(never, within=3600, what="never", running=[task])


async def test_a_task_that_returned_fails_the_wait_at_once() -> None:
    async def returns() -> None:
        return None

    async def never() -> bool:
        return False

    task = asyncio.create_task(returns(), name="the projector")
    await asyncio.wait({task})
    with pytest.raises(AssertionError, match="never: the projector ended while waiting"):
        await eventually(never, within=3600, what="never", running=[task])
