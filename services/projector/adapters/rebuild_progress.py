"""How far a ``cw rebuild`` has got, on the live projector's metrics port.

A rebuild writes a generation beside the live one, with its own checkpoint; that checkpoint is
its progress. The projector that holds the write lock reads it when Prometheus scrapes (at most
once per ``max_age``), so operators watch a rebuild where they watch everything else:
``cw_rebuild_checkpoint_seq / cw_projector_checkpoint_seq`` is the share done. A generation left
behind by a rebuild that was killed shows here too, until ``cw rebuild`` runs again or it is
dropped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator

import asyncpg
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from services.projector.adapters.generations import PROJECTION, check_schema

log = logging.getLogger("cw.projector.rebuild_progress")

BUILDING = """
SELECT n.nspname AS schema
FROM pg_namespace n
WHERE n.nspname ~ '^cw_rm_[0-9]+$'
  AND n.nspname <> (SELECT active_schema FROM cw.read_model_head WHERE projection = $1)
  AND to_regclass(n.nspname || '.checkpoint') IS NOT NULL
ORDER BY n.nspname
"""
CHECKPOINT = "SELECT COALESCE(max(stream_seq), 0) FROM {s}.checkpoint"


async def generations_being_built(pool: asyncpg.Pool) -> dict[int, int]:
    """Generation number -> its checkpoint, for every generation that is not live."""
    async with pool.acquire() as conn:
        found = {}
        for row in await conn.fetch(BUILDING, PROJECTION):
            schema = check_schema(row["schema"])
            number = int(schema.removeprefix("cw_rm_"))
            found[number] = int(await conn.fetchval(CHECKPOINT.replace("{s}", schema)))
        return found


class RebuildProgress(Collector):
    def __init__(
        self,
        pool: asyncpg.Pool,
        loop: asyncio.AbstractEventLoop,
        *,
        serving: Callable[[], bool],
        max_age_s: float = 15.0,
        timeout_s: float = 10.0,
    ) -> None:
        self._pool, self._loop, self._serving = pool, loop, serving
        self._max_age_s, self._timeout_s = max_age_s, timeout_s
        self._building: dict[int, int] = {}
        self._read_at = -float("inf")

    def describe(self) -> list[GaugeMetricFamily]:
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if not self._serving():
            return iter(())
        if time.monotonic() - self._read_at >= self._max_age_s:
            future = asyncio.run_coroutine_threadsafe(
                generations_being_built(self._pool), self._loop
            )
            try:
                self._building = future.result(self._timeout_s)
            except Exception:
                future.cancel()
                log.warning("rebuild progress could not be read", exc_info=True)
                self._building = {}
            self._read_at = time.monotonic()
        family = GaugeMetricFamily(
            "cw_rebuild_checkpoint_seq",
            "The CW_EVENTS sequence a rebuild has applied to the generation it is building "
            "(absent when no rebuild runs).",
            labels=["generation"],
        )
        for number, checkpoint in sorted(self._building.items()):
            family.add_metric([str(number)], checkpoint)
        return iter([family] if self._building else [])
