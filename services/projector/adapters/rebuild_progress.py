"""How far a ``cw rebuild`` has got, on the live projector's metrics port.

A rebuild writes a generation beside the live one, with its own checkpoint; that checkpoint is
its progress. The projector that holds the write lock reads it when Prometheus scrapes (at most
once per ``max_age``), so operators watch a rebuild where they watch everything else:
``cw_rebuild_checkpoint_seq / cw_projector_checkpoint_seq`` is the share done. A generation left
behind by a rebuild that was killed shows here too, until ``cw rebuild`` runs again or it is
dropped.
"""

from __future__ import annotations

import asyncpg
from prometheus_client.core import GaugeMetricFamily

from services.projector.adapters.gauges import ReadAtScrape
from services.projector.adapters.generations import PROJECTION, check_schema

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


class RebuildProgress(ReadAtScrape[dict[int, int]]):
    what = "rebuild progress"

    async def read(self, pool: asyncpg.Pool) -> dict[int, int]:
        return await generations_being_built(pool)

    def families(self, figures: dict[int, int]) -> list[GaugeMetricFamily]:
        if not figures:
            return []
        family = GaugeMetricFamily(
            "cw_rebuild_checkpoint_seq",
            "The CW_EVENTS sequence a rebuild has applied to the generation it is building "
            "(absent when no rebuild runs).",
            labels=["generation"],
        )
        for number, checkpoint in sorted(figures.items()):
            family.add_metric([str(number)], checkpoint)
        return [family]
