"""What ``cw audit`` and ``cw rebuild``'s guard cost on a large stream.

    .venv/bin/python bench/audit_cost.py [--events 200000] [--rounds 3] [--tree DIR ...]

Starts its own nats-server and throw-away databases (as ``projector_throughput.py``), publishes
the bench events, projects them with the projector, then:
- times ``cw audit``'s work (``bootstrap.audit``: the stream, the dead letters, the read model)
  over the whole stream, ``--rounds`` times, each in a process of its own; with ``--tree`` (a
  checkout put first on ``PYTHONPATH``, given twice or more) the trees take turns, an A/B of two
  versions of the code on the same stream and read model;
- times the rebuild's guard (``generations.MISSING_EVENTS``): the anti-join of the live archive
  against a second generation that holds the same events, and one that lacks 1% of them.
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


async def anti_join(settings: Settings, n: int) -> None:
    """The guard's statement on the archive of ``n`` events against a copy, whole and with 1%
    missing; the plan of the second."""
    from services.projector.adapters import generations  # noqa: PLC0415

    sql = getattr(generations, "MISSING_EVENTS", None)
    if sql is None:
        print("anti-join: this checkout has no MISSING_EVENTS (before the guard)")
        return
    conn = await asyncpg.connect(settings.database_url)
    try:
        new, _ = await generations.create_generation(conn)
        await conn.execute(f"INSERT INTO {new}.event_archive SELECT * FROM cw_rm_1.event_archive")
        await conn.execute(f"ANALYZE {new}.event_archive")
        statement = sql.replace("{old}", "cw_rm_1").replace("{new}", new)
        for label in ("whole", "1% missing"):
            if label != "whole":
                await conn.execute(f"DELETE FROM {new}.event_archive WHERE stream_seq % 100 = 0")
                await conn.execute(f"ANALYZE {new}.event_archive")
            times = []
            for _ in range(5):
                started = time.perf_counter()
                row = await conn.fetchrow(statement)
                times.append(time.perf_counter() - started)
            found = tuple(row or ())
            print(
                f"anti-join of {n:,} archived events, new generation {label}: "
                f"{statistics.median(times) * 1000:.0f} ms median of 5 "
                f"(min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}); found {found}"
            )
        plan = await conn.fetch("EXPLAIN (ANALYZE, COSTS OFF) " + statement)
        print("  plan: " + "\n        ".join(r[0] for r in plan))
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
    args = parser.parse_args()
    if args.audit_once:
        await audit_once(*args.audit_once)
        return
    async with own_stack() as stack:
        settings = await stack.fresh()
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
        await anti_join(settings, args.events)


if __name__ == "__main__":
    asyncio.run(main())
