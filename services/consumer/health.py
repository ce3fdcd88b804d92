"""What ``/healthz`` says about a consumer: ``ok``, ``slow``, ``stalled`` or ``standby``.

- ``ok``: caught up, or the oldest message not yet applied is younger than ``slow_after``;
- ``slow``: behind (the oldest waiting message is older than ``slow_after``) but advancing;
- ``stalled``: messages wait and the checkpoint has not moved for ``stall_after``, a server
  the consumer needs (NATS, PostgreSQL) cannot be reached, or the stream is not the one the
  consumer followed (``replaced``): nothing can advance;
- ``standby``: a hot standby waiting for the write lock (healthy: it is ready to take over).

``stalled`` answers HTTP 503 so that a load balancer, an orchestrator or a probe sees it; the
others answer 200. The figures come from the loop (``progressed``) and from a watcher that looks
at the stream and the servers every few seconds (``observed``); nothing here does I/O.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any

OK, SLOW, STALLED, STANDBY = "ok", "slow", "stalled", "standby"


@dataclass
class Health:
    stall_after_s: float = 60.0
    slow_after_s: float = 10.0
    clock: Callable[[], float] = time.time
    zone: tzinfo = UTC
    """The zone ``last_progress_at`` is written in (the campaign's: people read it too)."""
    standby: bool = True
    checkpoint: int | None = None
    lag_events: int | None = None
    lag_seconds: float | None = None
    last_progress_at: float | None = None
    unreachable: dict[str, str] = field(default_factory=dict)
    replaced: str | None = None
    """Why the stream is not the one the consumer followed (``services.consumer.identity``)."""

    def __post_init__(self) -> None:
        # Counting from the start: a consumer that never commits anything is stalled too.
        self.last_progress_at = self.clock()

    def writing(self) -> None:
        """The write lock is taken: this process is the consumer now."""
        self.standby = False
        self.last_progress_at = self.clock()

    def progressed(self, checkpoint: int) -> None:
        """A batch through ``checkpoint`` is committed."""
        if checkpoint != self.checkpoint:
            self.checkpoint = checkpoint
            self.last_progress_at = self.clock()

    def observed(
        self, lag_events: int | None, lag_seconds: float | None, unreachable: dict[str, str]
    ) -> None:
        """What the watcher saw: messages not yet applied, the age of the oldest, and which
        servers could not be reached (name -> why)."""
        self.lag_events, self.lag_seconds = lag_events, lag_seconds
        self.unreachable = dict(unreachable)
        if not lag_events:
            # Nothing waits: idle is not stalled, and the stall clock starts when work arrives.
            self.last_progress_at = self.clock()

    def status(self) -> tuple[str, str]:
        """The status and, when it is not ``ok``, why, in one line."""
        if self.replaced is not None:
            return STALLED, self.replaced
        if self.unreachable:
            reasons = "; ".join(f"{name}: {why}" for name, why in sorted(self.unreachable.items()))
            return STALLED, f"cannot reach {reasons}"
        if self.standby:
            return STANDBY, "waiting for the write lock (another process is writing)"
        idle_s = self.clock() - (self.last_progress_at or self.clock())
        if self.lag_events and idle_s >= self.stall_after_s:
            return STALLED, (
                f"{self.lag_events} messages wait and nothing was committed for {idle_s:.0f}s"
            )
        if self.lag_seconds is not None and self.lag_seconds >= self.slow_after_s:
            return SLOW, f"the oldest waiting message is {self.lag_seconds:.0f}s old"
        return OK, ""

    def report(self) -> tuple[int, dict[str, Any]]:
        """HTTP status code and the JSON body of ``/healthz``."""
        status, reason = self.status()
        progress = self.last_progress_at
        body: dict[str, Any] = {
            "status": status,
            "lag_events": self.lag_events,
            "lag_seconds": None if self.lag_seconds is None else round(self.lag_seconds, 3),
            "last_progress_at": (
                None
                if progress is None
                else datetime.fromtimestamp(progress, self.zone).isoformat()
            ),
            "checkpoint": self.checkpoint,
        }
        if reason:
            body["reason"] = reason
        return (503 if status == STALLED else 200), body
