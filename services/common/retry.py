"""The one retry policy: jittered exponential backoff (tenacity), the same everywhere.

What must never be retried is named by the caller (``Fenced``: another writer took over;
``Unstorable``: the same data will fail again); cancellation always goes through. Each retry
goes through one hook, which is where callers count it in their metrics.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_never,
)

T = TypeVar("T")
log = logging.getLogger("cw.retry")

OnRetry = Callable[[BaseException, float], None]
"""Called before each pause with the failure and the pause in seconds."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    first_s: float = 0.05
    """The first pause; each next one doubles, with jitter, up to ``cap_s``."""
    cap_s: float = 5.0
    attempts: int | None = None
    """``None``: until it goes through (a stuck service is visible; a dropped event is not)."""

    def pause(self, attempt: int) -> float:
        """The pause after failed attempt number ``attempt`` (1, 2, ...): ``first_s`` doubling,
        plus up to ``first_s`` of jitter, at most ``cap_s``. For a caller that keeps its own
        loop (the notifier, which must wait for a robot's budget between attempts)."""
        exponent = min(max(attempt, 1) - 1, 64)
        pause: float = self.first_s * 2**exponent + random.uniform(0, self.first_s)
        return max(0.0, min(pause, self.cap_s))


FOREVER = RetryPolicy()


async def retry(
    what: str,
    attempt: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy = FOREVER,
    never: tuple[type[BaseException], ...] = (),
    only: tuple[type[BaseException], ...] | None = None,
    on_retry: OnRetry | None = None,
    give_up: Callable[[], bool] | None = None,
) -> T:
    """Await ``attempt()`` until it succeeds; re-raise ``never`` errors (and, when ``only`` is
    given, every other error), and the last error when the attempts run out or ``give_up()``
    says so (a service that is stopping)."""

    def retryable(exc: BaseException) -> bool:
        if isinstance(exc, (asyncio.CancelledError, *never)):
            return False
        if only is not None and not isinstance(exc, only):
            return False
        return give_up is None or not give_up()

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        pause = state.next_action.sleep if state.next_action is not None else 0.0
        if exc is not None:
            log.warning("%s failed (%s: %s); retrying in %.2fs", what, type(exc).__name__, exc,
                        pause)  # fmt: skip
            if on_retry is not None:
                on_retry(exc, pause)

    retrying = AsyncRetrying(
        retry=retry_if_exception(retryable),
        wait=lambda state: policy.pause(state.attempt_number),
        stop=stop_never if policy.attempts is None else stop_after_attempt(policy.attempts),
        before_sleep=before_sleep,
        reraise=True,
    )
    async for state in retrying:
        with state:
            return await attempt()
    raise AssertionError("unreachable: tenacity either returns or re-raises")  # pragma: no cover
