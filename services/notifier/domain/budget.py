"""How many messages a target may still take: ``per_minute`` in any ``window``, counted from
the attempts recorded in PostgreSQL, so that a restart cannot reset it.

An attempt occupies the budget from its start until ``window`` after it ended. The robot
counts a message when it arrives, some time between our start and our end; counting from the
end makes the robot's own count, in any window, never more than ours. An attempt whose end was
never recorded (the process died with it in flight) is taken to have ended when its request
would have timed out. A refused attempt counts like any other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

REQUEST_TIMEOUT = timedelta(seconds=10)
"""How long one HTTP request to a target may take."""
THROTTLE_WINDOWS = 10
"""DingTalk throttles a robot that sent too fast for 10 minutes: 10 windows of a minute."""


@dataclass(frozen=True, slots=True)
class Attempt:
    """One message sent (or being sent) to a target."""

    started_at: datetime
    finished_at: datetime | None
    """``None``: still in flight, or cut off by a crash."""
    throttled: bool = False
    """The robot said we sent too fast."""


@dataclass(frozen=True, slots=True)
class Budget:
    per_minute: int | None
    """``None``: no limit."""
    window: timedelta
    throttle_pause: timedelta
    """How long to leave a robot alone once it said we sent too fast."""
    request_timeout: timedelta = REQUEST_TIMEOUT

    @property
    def lookback(self) -> timedelta:
        """How far back attempts can still matter."""
        return max(self.window, self.throttle_pause) + self.request_timeout

    def ended(self, attempt: Attempt) -> datetime:
        return attempt.finished_at or attempt.started_at + self.request_timeout

    def free(self, attempts: Sequence[Attempt], now: datetime) -> int:
        """How many messages may start now (ignoring a throttle)."""
        if self.per_minute is None:
            return 1_000_000
        return max(0, self.per_minute - len(self._occupying(attempts, now)))

    def next_start(self, attempts: Sequence[Attempt], now: datetime) -> datetime:
        """The earliest moment the next message may start: ``now`` when it may go at once."""
        at = now
        throttled = [self.ended(a) for a in attempts if a.throttled]
        if throttled:
            at = max(at, max(throttled) + self.throttle_pause)
        if self.per_minute is not None:
            ends = sorted(self.ended(a) for a in self._occupying(attempts, at))
            excess = len(ends) - self.per_minute
            if excess >= 0:
                at = max(at, ends[excess] + self.window)
        return at

    @property
    def reserve(self) -> int:
        """Half the budget, kept for merged messages when reminders keep coming."""
        return (self.per_minute or 0) // 2

    def paced_start(self, attempts: Sequence[Attempt], now: datetime) -> datetime:
        """When the next message may go if it does not have to go at once: while more than the
        reserve is free, now; after that, one ``window / per_minute`` after the last message
        ended, so that reminders that keep coming are gathered into fewer messages instead of
        using the budget up in the first seconds and then waiting a whole window."""
        if self.per_minute is None or not attempts or self.free(attempts, now) > self.reserve:
            return now
        last = max(self.ended(a) for a in attempts)
        return max(now, last + self.window / self.per_minute)

    def _occupying(self, attempts: Sequence[Attempt], now: datetime) -> list[Attempt]:
        return [a for a in attempts if self.ended(a) + self.window > now]


def budget_for(kind: str, per_minute: int | None, window: timedelta) -> Budget:
    """DingTalk throttles a robot for ten windows; WeCom's 45009 asks for the next one."""
    pause = window * (THROTTLE_WINDOWS if kind == "dingtalk" else 1)
    return Budget(per_minute, window, pause)
