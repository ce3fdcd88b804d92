"""The watcher behind ``/healthz``: every few seconds, how far behind the consumer is (in
messages and in seconds, from the stream's own timestamps) and whether its servers answer.

It runs beside the loop, never in it: a loop stuck in a retry is exactly what it must see.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from services.common.connect import failure_text
from services.consumer.health import Health

log = logging.getLogger("cw.health")

PROBE_TIMEOUT_S = 2.0


async def _probe(what: Callable[[], Awaitable[object]]) -> tuple[object, str | None]:
    try:
        return await asyncio.wait_for(what(), PROBE_TIMEOUT_S), None
    except Exception as exc:
        return None, failure_text(exc)


async def watch(
    health: Health,
    *,
    pending: Callable[[], Awaitable[int]],
    oldest_waiting: Callable[[int], Awaitable[datetime | None]],
    database: Callable[[], Awaitable[object]],
    every_s: float = 2.0,
    on_observed: Callable[[Health], None] | None = None,
) -> None:
    """Until cancelled: ``pending()`` messages not yet applied, ``oldest_waiting(checkpoint)``
    the stream time of the first one after the checkpoint, ``database()`` a trivial query."""
    while True:
        unreachable: dict[str, str] = {}
        lag, nats_failure = await _probe(pending)
        if nats_failure is not None:
            unreachable["NATS"] = nats_failure
        lag_seconds: float | None = None
        if isinstance(lag, int) and lag > 0 and health.checkpoint is not None:
            oldest, _ = await _probe(lambda: oldest_waiting(health.checkpoint or 0))
            if isinstance(oldest, datetime):
                lag_seconds = max(0.0, (datetime.now(UTC) - oldest).total_seconds())
        elif lag == 0:
            lag_seconds = 0.0
        _, db_failure = await _probe(database)
        if db_failure is not None:
            unreachable["PostgreSQL"] = db_failure
        health.observed(lag if isinstance(lag, int) else None, lag_seconds, unreachable)
        if on_observed is not None:
            on_observed(health)
        await asyncio.sleep(every_s)
