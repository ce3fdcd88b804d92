"""`cw init` brings a generation built by an earlier version up to what this one writes."""

from __future__ import annotations

import asyncpg
import pytest

from services.common.settings import Settings
from services.projector.adapters.read_model import PostgresReadModel
from services.projector.bootstrap import ensure_read_model
from tests import factories as f
from tests.integration.conftest import Harness

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


async def test_an_earlier_generation_gains_deadlines_and_inspection_kinds_from_its_archive(
    harness: Harness,
) -> None:
    m = "LY-FM-001"
    day = f.at("2023-03-01 09:00")
    await harness.publish([
        f.venue(m, day),
        f.inspection(m, day, kind="supervision", items_checked=8, items_failed=2),
        f.inspection(m, day, kind="look_back"),
        f.due(m, "I1", f.at("2023-03-01 11:00"), f.at("2023-03-10 18:00")),  # waits for I1
        f.issue(m, "I1", f.at("2023-03-01 10:00")),
        f.due(m, "I1", f.at("2023-03-02 11:00"), f.at("2023-03-10 18:00")),  # no change
        f.due("ELSEWHERE", "I1", f.at("2023-03-03 11:00"), f.at("2023-04-01 18:00")),  # refused
        f.due(m, "I1", f.at("2023-03-09 11:00"), f.at("2023-03-20 18:00")),
        f.recheck_passed(m, "I1", f.at("2023-03-15 10:00")),
        f.due(m, "I1", f.at("2023-03-16 11:00"), f.at("2023-03-30 18:00")),  # after closing
        f.issue(m, "I2", f.at("2023-03-01 10:00"), item_code="FM-PUB"),
    ])  # fmt: skip
    await harness.project()
    issues = "SELECT * FROM issue_status ORDER BY issue_id"
    counts = "SELECT * FROM venue_phase_summary ORDER BY phase"
    before = (await harness.rows(issues), await harness.rows(counts))
    assert before[0][0]["extensions"] == 1
    # The previous release's shape: none of the new columns (the views go with them).
    await harness.db.execute("""
        DROP VIEW public.street_summary, public.district_phase_summary, public.phase_summary,
                  public.venue_phase_summary, public.issue_status;
        ALTER TABLE cw_rm_1.issues DROP COLUMN original_due_at, DROP COLUMN extensions;
        ALTER TABLE cw_rm_1.venue_phase_counts
            DROP COLUMN inspections_self_check, DROP COLUMN inspections_supervision,
            DROP COLUMN inspections_look_back, DROP COLUMN inspections_re_review,
            DROP COLUMN items_checked, DROP COLUMN items_failed;
    """)  # fmt: skip
    await ensure_read_model(harness.settings)
    assert (await harness.rows(issues), await harness.rows(counts)) == before
