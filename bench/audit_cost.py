"""What ``cw audit`` and ``cw rebuild``'s guard cost on a large stream.

    .venv/bin/python bench/audit_cost.py [--events 200000] [--rounds 3] [--tree DIR ...]

Starts its own nats-server and throw-away databases (as ``projector_throughput.py``), publishes
the bench events, projects them with the projector, then:
- times ``cw audit``'s work (``bootstrap.audit``: the stream, the dead letters, the read model)
  over the whole stream, ``--rounds`` times, each in a process of its own; with ``--tree`` (a
  checkout put first on ``PYTHONPATH``, given twice or more) the trees take turns, an A/B of two
  versions of the code on the same stream and read model;
- times the rebuild's guard (``generations``: ``COMPARE`` before the swap, ``MISSING_SINCE``
  under its lock, the whole ``MISSING_EVENTS``) against a second generation that holds the same
  events, and one that lacks 1% of them; ``--guard-only N`` does only this, on a synthetic
  archive of N events written straight into PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
from projector_throughput import campaign_events, own_stack, projector_drain, publish

from services.common.settings import Settings

HERE = Path(__file__).resolve()


async def audit_once(nats_url: str, database_url: str) -> None:
    """One audit, in this process (the code on ``PYTHONPATH``): prints its figures as JSON."""
    from services.projector.bootstrap import audit  # noqa: PLC0415

    settings = Settings(nats_url=nats_url, database_url=database_url, metrics_port=0)
    started = time.perf_counter()
    cpu = time.process_time()
    report = await audit(settings)
    print(
        json.dumps(
            {
                "seconds": time.perf_counter() - started,
                "cpu": time.process_time() - cpu,
                "checked": report.checked,
                "clean": report.clean,
            }
        )
    )


def audit_in_process(tree: str | None, settings: Settings) -> dict[str, float]:
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = tree
    done = subprocess.run(
        [sys.executable, str(HERE), "--audit-once", settings.nats_url, settings.database_url],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


async def timed(
    conn: asyncpg.Connection, sql: str, *args: object
) -> tuple[float, tuple[object, ...]]:
    """The median of 5 runs of ``sql`` (seconds), and its answer."""
    times = []
    row: asyncpg.Record | None = None
    for _ in range(5):
        started = time.perf_counter()
        row = await conn.fetchrow(sql, *args)
        times.append(time.perf_counter() - started)
    return statistics.median(times), tuple(row or ())


async def guard(conn: asyncpg.Connection, n: int) -> None:
    """The rebuild's guard on ``cw_rm_1`` (live, ``n`` archived events) against a copy of it in
    another generation, whole and lacking 1%: the comparison before the swap (``COMPARE``, with
    the ``ANALYZE`` it starts with), what the swap's lock covers (``MISSING_SINCE``), and the
    whole anti-join (``MISSING_EVENTS``) for reference."""
    from services.projector.adapters import generations as g  # noqa: PLC0415

    if getattr(g, "MISSING_EVENTS", None) is None:
        print("guard: this checkout has none (before the guard)")
        return
    new, _ = await g.create_generation(conn)
    await conn.execute(f"INSERT INTO {new}.event_archive SELECT * FROM cw_rm_1.event_archive")
    for label in ("whole", "lacking 1%"):
        if label != "whole":
            await conn.execute(f"DELETE FROM {new}.event_archive WHERE stream_seq % 100 = 0")
        started = time.perf_counter()
        through, missing = await g.compare_archives(conn, "cw_rm_1", new)
        compared = time.perf_counter() - started
        since = g.MISSING_SINCE.replace("{old}", "cw_rm_1").replace("{new}", new)
        locked, found = await timed(conn, since, through, missing or [])
        whole, all_found = await timed(
            conn, g.MISSING_EVENTS.replace("{old}", "cw_rm_1").replace("{new}", new)
        )
        print(
            f"guard, {n:,} archived events, new generation {label}: before the swap "
            f"{compared * 1000:.0f} ms ({len(missing) if missing is not None else 'too many'} "
            f"missing), under the lock {locked * 1000:.1f} ms {found}; whole anti-join "
            f"{whole * 1000:.0f} ms {all_found}"
        )
    plan = await conn.fetch("EXPLAIN (ANALYZE, COSTS OFF) " + since, through, missing or [])
    lines = [str(r[0])[:110] for r in plan]  # a condition quotes every candidate's id
    print("  under the lock: " + "\n                  ".join(lines))


async def guard_on(database_url: str, n: int) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await guard(conn, n)
    finally:
        await conn.close()


async def synthetic_archive(settings: Settings, n: int) -> None:
    """``n`` archived events of about 350 bytes written straight into the live generation (and a
    checkpoint at ``n``), without NATS: the guard's statements on a large archive."""
    conn = await asyncpg.connect(settings.database_url)
    try:
        await conn.execute(
            """
            INSERT INTO cw_rm_1.event_archive (event_id, stream_seq, event_type, district,
                venue_id, phase, occurred_at, subject, payload)
            SELECT gen_random_uuid(), s, 'IssueFound', '320703', 'LY-FM-' || (s % 5000),
                   're_review', now(), 'cw.events.320703.LY-FM-1.IssueFound',
                   convert_to(repeat('x', 350), 'UTF8')
            FROM generate_series(1, $1) AS s
            """,
            n,
        )
        await conn.execute(
            "INSERT INTO cw_rm_1.checkpoint (projection, partition, stream_seq) "
            "VALUES ('projector', '', $1)",
            n,
        )
        # As the projector leaves it before a vacuum: analysed, its BRIN index not summarised.
        await conn.execute("ANALYZE cw_rm_1.event_archive")
    finally:
        await conn.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--tree", action="append", default=[], help="a checkout to time (PYTHONPATH); repeatable"
    )
    parser.add_argument("--audit-once", nargs=2, metavar=("NATS_URL", "DATABASE_URL"))
    parser.add_argument(
        "--guard-only",
        type=int,
        metavar="N",
        help="only the rebuild's guard, on a synthetic archive of N events (no NATS)",
    )
    args = parser.parse_args()
    if args.audit_once:
        await audit_once(*args.audit_once)
        return
    async with own_stack() as stack:
        settings = await stack.fresh()
        if args.guard_only:
            await synthetic_archive(settings, args.guard_only)
            await guard_on(settings.database_url, args.guard_only)
            return
        rate = await publish(settings.nats_url, campaign_events(args.events, 5000))
        print(f"published {args.events:,} events at {rate:,.0f}/s")
        projected, _ = await projector_drain(settings, args.events)
        print(f"projected at {projected:,.0f} events/s")
        trees: list[str | None] = args.tree or [None]
        seen: dict[str | None, list[dict[str, float]]] = {t: [] for t in trees}
        for _ in range(args.rounds):
            for tree in trees:
                seen[tree].append(audit_in_process(tree, settings))
        for tree, runs in seen.items():
            wall = [r["seconds"] for r in runs]
            cpu = [r["cpu"] for r in runs]
            print(
                f"cw audit ({tree or 'this checkout'}): {runs[0]['checked']:,.0f} messages, "
                f"{statistics.median(wall):.2f} s median (rounds "
                f"{', '.join(f'{w:.2f}' for w in wall)}), CPU {statistics.median(cpu):.2f} s, "
                f"clean {all(r['clean'] for r in runs)}"
            )
        await guard_on(settings.database_url, args.events)


if __name__ == "__main__":
    asyncio.run(main())
