"""``cw rebuild``: a fresh read model equals the live one and is swapped in without downtime."""

from __future__ import annotations

import asyncio
import itertools
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts import Event
from services.projector.adapters.metrics import ProjectorMetrics
from services.projector.adapters.rebuilds import PostgresGenerations
from services.projector.bootstrap import audit, build_projector, projector_parts, rebuild
from services.projector.domain.ports import Comparison, Missing
from tests import factories as f
from tests.integration.conftest import Harness, wait_for_checkpoint
from tests.support.processes import cw, cw_env
from tests.support.replaced_streams import recreate_stream
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

VIEWS = {
    "venues": "SELECT * FROM venues ORDER BY district, venue_id",
    "issue_status": "SELECT * FROM issue_status ORDER BY district, issue_id",
    "venue_phase_summary": "SELECT * FROM venue_phase_summary ORDER BY district, venue_id, phase",
    "phase_summary": "SELECT * FROM phase_summary ORDER BY phase, venue_kind",
    "event_archive": "SELECT stream_seq, event_id, phase FROM event_archive ORDER BY stream_seq",
}
START = f.at("2023-02-01 09:00")
VENUES = ["LY-FM-001", "LY-FM-002", "LY-MALL-01"]
ITEMS = ["FM-3F", "FM-PUB", "MALL-AED"]
_example = itertools.count()


async def views(h: Harness) -> dict[str, list[dict[str, Any]]]:
    return {name: await h.rows(sql) for name, sql in VIEWS.items()}


action = st.one_of(
    st.tuples(st.just("venue"), st.sampled_from(VENUES), st.integers(0, 200)),
    st.tuples(st.just("inspect"), st.sampled_from(VENUES), st.integers(0, 200)),
    st.tuples(
        st.just("found"),
        st.integers(0, 7),
        st.sampled_from(VENUES),
        st.sampled_from(ITEMS),
        st.integers(0, 200),
    ),
    st.tuples(st.just("due"), st.integers(0, 7), st.integers(0, 200), st.integers(1, 40)),
    st.tuples(st.just("fail"), st.integers(0, 7), st.integers(0, 200)),
    st.tuples(st.just("pass"), st.integers(0, 7), st.integers(0, 200)),
    st.tuples(st.just("again"), st.integers(0, 1000)),
)


def events_of(actions: list[tuple[Any, ...]], prefix: str) -> list[Event]:
    """Turn drawn actions into events; issue events may come before their IssueFound."""
    out: list[Event] = []
    venue_of: dict[int, str] = {}
    for a in actions:
        kind, day = a[0], timedelta(days=a[-1] if a[0] != "due" else a[2])
        if kind == "venue":
            out.append(f.venue(a[1], START + day, kind="mall_supermarket" if "MALL" in a[1]
                               else "farmers_market"))  # fmt: skip
        elif kind == "inspect":
            out.append(f.inspection(a[1], START + day))
        elif kind == "found":
            venue_of.setdefault(a[1], a[2])
            out.append(f.issue(a[2], f"{prefix}-I{a[1]}", START + day, item_code=a[3]))
        elif kind == "again":
            if out:
                out.append(out[a[1] % len(out)])
        else:
            n = a[1]
            venue = venue_of.get(n, VENUES[n % len(VENUES)])
            issue_id = f"{prefix}-I{n}"
            if kind == "due":
                out.append(f.due(venue, issue_id, START + day, START + day + timedelta(days=a[3])))
            elif kind == "fail":
                out.append(f.recheck_failed(venue, issue_id, START + day))
            else:
                out.append(f.recheck_passed(venue, issue_id, START + day))
    return out


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(actions=st.lists(action, min_size=5, max_size=60), batch=st.integers(1, 40))
async def test_the_live_projection_equals_a_fresh_rebuild(
    harness: Harness, actions: list[tuple[Any, ...]], batch: int
) -> None:
    # The harness persists across examples: each example adds to the same stream, and the
    # comparison covers everything published so far.
    await harness.publish(events_of(actions, f"X{next(_example)}"), msg_id=False)
    harness.settings = harness.settings.model_copy(update={"projector_batch": batch})
    await harness.project()
    live = await views(harness)
    await rebuild(harness.settings, ProjectorMetrics())
    assert await views(harness) == live


async def test_rebuild_swaps_without_downtime_while_the_projector_runs(harness: Harness) -> None:
    first = [f.issue(f"V{i % 20}", f"I{i}", START + timedelta(hours=i)) for i in range(3000)]
    await harness.publish(first)
    settings = harness.settings.model_copy(update={"projector_batch": 200})
    async with projector_parts(settings) as (nc, pool, campaign):
        live = build_projector(settings, nc, pool, campaign, ProjectorMetrics())
        task = asyncio.create_task(live.run())
        await wait_for_checkpoint(live, await harness.last_seq(), 60, task)
        seen: list[int] = []
        stop_reading = asyncio.Event()

        async def reader() -> None:
            while not stop_reading.is_set():
                seen.append(await harness.db.fetchval("SELECT count(*) FROM issue_status"))
                await asyncio.sleep(0.01)

        async def writer() -> None:
            more = [f.issue("V-LATE", f"L{i}", START + timedelta(hours=i)) for i in range(500)]
            for i in range(0, len(more), 50):
                await harness.publish(more[i : i + 50])
                await asyncio.sleep(0.02)

        reading = asyncio.create_task(reader())
        report, _ = await asyncio.gather(rebuild(settings, ProjectorMetrics()), writer())
        await wait_for_checkpoint(live, await harness.last_seq(), 60, task)
        stop_reading.set()
        await reading
        live.stopping.set()
        await task
    assert "is live" in report[-1]
    assert min(seen) >= 3000, "a reader saw an empty or half-built read model"
    assert seen == sorted(seen), "a reader saw issues disappear"
    totals = await harness.rows("SELECT count(*) AS n FROM issue_status")
    assert totals[0]["n"] == 3500
    generations = await harness.rows(
        "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'cw_rm_%' ORDER BY 1"
    )
    assert generations == [{"nspname": "cw_rm_2"}]


async def generations(h: Harness) -> list[str]:
    rows = await h.rows("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'cw_rm_%' ORDER BY 1")
    return [str(r["nspname"]) for r in rows]


async def test_a_rebuild_never_empties_the_views_from_a_stream_that_lost_its_history(
    harness: Harness,
) -> None:
    history = [f.issue(f"V{i % 3}", f"I{i}", START + timedelta(hours=i)) for i in range(10)]
    await harness.publish(history)
    await harness.project()
    live = await views(harness)
    # CW_EVENTS lost its store and `cw init` created it again; the districts sent their last
    # four events again.
    await recreate_stream(harness.nc, "CW_EVENTS")
    await harness.publish(history[6:])
    env = cw_env(harness.settings.nats_url, harness.settings.database_url)

    done = cw(env, "rebuild")
    assert done.returncode == 2, done.stdout + done.stderr
    said = [line for line in done.stderr.splitlines() if line.startswith("cw rebuild:")]
    assert said == [
        "cw rebuild: refused to swap: the live read model holds 6 events (archived at stream "
        "sequences 1-6) that CW_EVENTS no longer has, and generation 2 was rebuilt without them; "
        "generation 2 dropped, the live read model unchanged. Restore CW_EVENTS from its backup "
        "(docs/operations.md), then rebuild (--accept-loss swaps anyway)"
    ]
    assert "Traceback" not in done.stderr
    assert await views(harness) == live
    assert await generations(harness) == ["cw_rm_1"]

    done = cw(env, "rebuild", "--accept-loss")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[1:] == [
        "rebuild: 6 events of the live read model are not in generation 2: swapped in all the "
        "same, as asked (--accept-loss)",
        "rebuild: generation 2 is live at stream sequence 4; dropped cw_rm_1",
    ]
    remaining = await harness.rows("SELECT issue_id FROM issue_status ORDER BY issue_id")
    assert [r["issue_id"] for r in remaining] == [f"I{i}" for i in range(6, 10)]


async def test_the_projector_stalled_on_a_replaced_stream_resumes_after_a_rebuild_from_it(
    harness: Harness,
) -> None:
    history = [f.issue(f"V{i % 3}", f"I{i}", START + timedelta(hours=i)) for i in range(20)]
    await harness.publish(history)
    settings = harness.settings
    async with projector_parts(settings) as (nc, pool, campaign):
        live = build_projector(settings, nc, pool, campaign, ProjectorMetrics())
        live.recheck_s = 0.1  # 30 s in service
        task = asyncio.create_task(live.run())
        try:
            await wait_for_checkpoint(live, 20, 60, task)
            before = await views(harness)
            # The whole history again, under new sequences (another order).
            await recreate_stream(harness.nc, "CW_EVENTS")
            await harness.publish(history[::-1])

            async def stalled() -> bool:
                return live.replaced is not None and "holds message" in live.replaced

            await eventually(stalled, within=30, what="the projector stalls", running=[task])
            report = await rebuild(settings, ProjectorMetrics())
            assert (
                report[-1] == "rebuild: generation 2 is live at stream sequence 20; dropped cw_rm_1"
            )

            async def resumed() -> bool:
                return live.replaced is None

            await eventually(resumed, within=30, what="the projector resumes", running=[task])
            later = f.issue("V-LATE", "L1", START + timedelta(days=30))
            await harness.publish([later])
            await wait_for_checkpoint(live, 21, 60, task)
        finally:
            live.stopping.set()
            await asyncio.wait_for(task, 30)
    after = await views(harness)
    # The same read model, the archive under the new stream's sequences, and one more issue.
    assert [r for r in after["issue_status"] if r["issue_id"] != "L1"] == before["issue_status"]
    assert len(after["event_archive"]) == 21
    tracked = await harness.rows("SELECT stream_seq, message_id FROM cw_rm_2.checkpoint")
    assert tracked == [{"stream_seq": 21, "message_id": str(later.event_id)}]
    assert (await audit(settings)).clean


async def test_the_swap_looks_again_only_at_what_may_have_changed_since_the_comparison(
    harness: Harness,
) -> None:
    history = [f.issue("V1", f"I{i}", START + timedelta(hours=i)) for i in range(5)]
    await harness.publish(history)
    await harness.project()
    pool = await asyncpg.create_pool(harness.settings.database_url, min_size=1, max_size=2)
    assert pool is not None
    try:
        generations = PostgresGenerations(pool)
        new = await generations.create()
        # The new generation, being built, has the first four events; the live one all five.
        await harness.db.execute(
            f"INSERT INTO {new.name}.event_archive "
            "SELECT * FROM cw_rm_1.event_archive WHERE stream_seq <= 4"
        )
        before = await generations.compare(new.name)
        assert before == Comparison("cw_rm_1", 5, (history[4].event_id,))
        # Then the builder catches up with the fifth, and the live projector archives a sixth.
        await harness.db.execute(
            f"INSERT INTO {new.name}.event_archive "
            "SELECT * FROM cw_rm_1.event_archive WHERE stream_seq = 5"
        )
        await harness.publish([f.issue("V1", "LATE", START + timedelta(days=1))])
        await harness.project()
        async with generations.swapping(new.name) as swap:
            assert await swap.missing(before) == Missing(1, 6, 6)
            assert await swap.missing() == Missing(1, 6, 6)  # the whole comparison agrees
            stale = Comparison("cw_rm_1", 5, None)  # too many then: compared whole
            assert await swap.missing(stale) == Missing(1, 6, 6)
        await generations.drop(new.name)
    finally:
        await pool.close()
