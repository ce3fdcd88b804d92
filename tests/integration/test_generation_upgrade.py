"""`cw init` brings a generation built by an earlier version up to what this one writes."""

from __future__ import annotations

import asyncpg
import pytest

from services.common.settings import Settings
from services.projector.adapters.read_model import PostgresReadModel
from services.projector.bootstrap import ensure_read_model

pytestmark = pytest.mark.integration


async def test_an_earlier_generation_keeps_its_checkpoint_and_gains_what_is_new(
    database_url: str,
) -> None:
    settings = Settings(database_url=database_url)
    await ensure_read_model(settings)
    db = await asyncpg.connect(database_url)
    try:
        # The first release's shape: one checkpoint row keyed by projection, no outcomes table.
        await db.execute("""
            DROP TABLE cw_rm_1.stream_outcomes;
            DROP INDEX cw_rm_1.event_archive_stream_seq;
            DROP TABLE cw_rm_1.checkpoint;
            CREATE TABLE cw_rm_1.checkpoint (
                projection text PRIMARY KEY, stream_seq bigint NOT NULL
            );
            INSERT INTO cw_rm_1.checkpoint VALUES ('projector', 7);
            DROP VIEW public.street_summary;
            DROP VIEW public.district_phase_summary;
        """)  # fmt: skip
        report = await ensure_read_model(settings)
        assert any("live generation 1" in line for line in report)
        again = await ensure_read_model(settings)  # a second init changes nothing
        assert any("live generation 1" in line for line in again)
        keys = await db.fetch(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 'cw_rm_1.checkpoint'::regclass "
            "AND i.indisprimary ORDER BY a.attname"
        )
        assert [k["attname"] for k in keys] == ["partition", "projection"]
        assert await db.fetchval("SELECT to_regclass('cw_rm_1.stream_outcomes')") is not None
        # Views added since come with cw init, without a rebuild.
        for view in ("public.street_summary", "public.district_phase_summary"):
            assert await db.fetchval("SELECT to_regclass($1)", view) is not None, view
    finally:
        await db.close()
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    assert pool is not None
    try:
        store = PostgresReadModel(pool)
        assert await store.checkpoint() == 7
        async with store.unit() as unit:
            await unit.set_checkpoint(9)
        assert await store.checkpoint() == 9
    finally:
        await pool.close()
