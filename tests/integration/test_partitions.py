"""Partition seams: projectors that each own one district's subjects (their own durable, write
lease and checkpoint) together project exactly what one projector projects."""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

import asyncpg
import pytest

from contracts import Event
from services.common.settings import Settings
from services.projector.adapters.metrics import ProjectorMetrics
from services.projector.adapters.postgres import PostgresReadModel
from services.projector.bootstrap import rebuild
from tests import factories as f
from tests.integration.conftest import Harness, audits_clean
from tests.support.nothing_lost import projector_in_process
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration
DISTRICTS = ("320703", "320706")
VIEWS = {
    "issue_status": "district, issue_id",
    "venue_phase_summary": "district, venue_id, phase",
    "phase_summary": "phase, venue_kind",
    "venues": "district, venue_id",
}


def campaign(district: str, n: int, start: int = 0) -> list[Event]:
    out: list[Event] = []
    for i in range(start, start + n):
        v = f"V{i % 3}"
        kw: dict[str, Any] = {"district": district}
        out += [
            f.venue(v, f.at("2023-02-01 09:00"), **kw),
            f.issue(v, f"I{i}", f.at("2023-03-01 10:00"), **kw),
            f.due(v, f"I{i}", f.at("2023-03-01 11:00"), f.at("2023-03-10 18:00"), **kw),
        ]
        if i % 2:
            out.append(f.recheck_passed(v, f"I{i}", f.at("2023-03-09 10:00"), **kw))
    return out


def partition(settings: Settings, district: str) -> Settings:
    return settings.model_copy(
        update={
            "projector_partition": f"cw.events.{district}.>",
            "projector_durable": f"projector-{district}",
        }
    )


async def views(db: asyncpg.Connection) -> dict[str, list[dict[str, object]]]:
    return {
        view: [dict(r) for r in await db.fetch(f"SELECT * FROM {view} ORDER BY {order}")]
        for view, order in VIEWS.items()
    }


async def project_partitions(harness: Harness, last: dict[str, int]) -> None:
    """Run one projector per district until each has reached its district's last event."""
    pool = await asyncpg.create_pool(harness.settings.database_url, min_size=1, max_size=2)
    assert pool is not None
    try:
        async with AsyncExitStack() as stack:
            tasks = [
                await stack.enter_async_context(
                    projector_in_process(partition(harness.settings, d), ProjectorMetrics())
                )
                for d in DISTRICTS
            ]
            for d in DISTRICTS:
                store = PostgresReadModel(pool, partition=f"cw.events.{d}.>")

                async def reached(store: PostgresReadModel = store, d: str = d) -> bool:
                    return await store.checkpoint() >= last[d]

                await eventually(reached, within=60, what=f"partition {d}", running=tasks)
    finally:
        await pool.close()


async def test_two_partitions_project_what_one_projector_projects(harness: Harness) -> None:
    js = harness.nc.jetstream()
    last: dict[str, int] = {}
    # Interleaved, as districts publish in the real stream.
    for a, b in zip(campaign(DISTRICTS[0], 12), campaign(DISTRICTS[1], 12), strict=False):
        for ev in (a, b):
            ack = await js.publish(
                ev.subject, f.wire(ev), headers={"Nats-Msg-Id": str(ev.event_id)}
            )
            last[ev.district] = ack.seq
    await project_partitions(harness, last)
    # Each saw only its own district: no checkpoint past its last event, no message seen twice.
    rows = await harness.db.fetch("SELECT partition, stream_seq FROM cw_rm_1.checkpoint")
    assert {r["partition"]: r["stream_seq"] for r in rows} == {
        f"cw.events.{d}.>": last[d] for d in DISTRICTS
    }
    assert await harness.db.fetchval("SELECT count(*) FROM cw_rm_1.stream_outcomes") == 0
    by_partitions = await views(harness.db)
    assert {r["district"] for r in by_partitions["issue_status"]} == set(DISTRICTS)

    # One projector over the whole stream (a rebuild replays it into a new generation).
    await rebuild(harness.settings, ProjectorMetrics())
    assert await views(harness.db) == by_partitions

    # The rebuild left each partition its checkpoint: they go on from there, nothing twice.
    for ev in campaign(DISTRICTS[1], 2, start=100):
        ack = await js.publish(ev.subject, f.wire(ev), headers={"Nats-Msg-Id": str(ev.event_id)})
        last[ev.district] = ack.seq
    await project_partitions(harness, last)
    counts = await harness.db.fetch(
        "SELECT district, count(*) AS n FROM issue_status GROUP BY district ORDER BY district"
    )
    assert [(r["district"], r["n"]) for r in counts] == [(DISTRICTS[0], 12), (DISTRICTS[1], 14)]
    schema = await harness.db.fetchval("SELECT active_schema FROM cw.read_model_head")
    repeated = await harness.db.fetchval(f"SELECT count(*) FROM {schema}.stream_outcomes")
    assert repeated == 0, "a partition started again from the beginning after the rebuild"
    await audits_clean(harness.settings)
