"""The one retry policy: what it retries, what it never retries, and the hook that counts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from services.common.retry import RetryPolicy, retry

pytestmark = pytest.mark.unit
QUICK = RetryPolicy(first_s=0.001, cap_s=0.002)


class Takeover(RuntimeError):
    pass


def failing(times: int, exc: BaseException) -> tuple[list[int], Callable[[], Awaitable[int]]]:
    calls: list[int] = []

    async def attempt() -> int:
        calls.append(1)
        if len(calls) <= times:
            raise exc
        return len(calls)

    return calls, attempt


async def test_retries_until_it_goes_through_and_counts_each_retry() -> None:
    calls, attempt = failing(3, OSError("down"))
    seen: list[str] = []
    result = await retry(
        "db", attempt, policy=QUICK, on_retry=lambda exc, _pause: seen.append(str(exc))
    )
    assert (result, len(calls), seen) == (4, 4, ["down"] * 3)


async def test_never_retries_what_it_is_told_not_to() -> None:
    calls, attempt = failing(1, Takeover("another writer"))
    with pytest.raises(Takeover):
        await retry("db", attempt, policy=QUICK, never=(Takeover,))
    assert len(calls) == 1


async def test_only_retries_the_errors_named_and_gives_up_after_the_attempts() -> None:
    calls, attempt = failing(1, ValueError("bad"))
    with pytest.raises(ValueError):
        await retry("publish", attempt, policy=QUICK, only=(OSError,))
    assert len(calls) == 1
    calls, attempt = failing(10, OSError("down"))
    with pytest.raises(OSError):
        await retry("publish", attempt, policy=RetryPolicy(0.001, 0.002, attempts=3))
    assert len(calls) == 3


async def test_a_service_that_is_stopping_stops_retrying() -> None:
    calls, attempt = failing(10, OSError("down"))
    with pytest.raises(OSError):
        await retry("db", attempt, policy=QUICK, give_up=lambda: len(calls) >= 2)
    assert len(calls) == 2
