"""The notifier delivering a burst of reminders to rate-limited robots, measured in one run.

    .venv/bin/python bench/notifier_burst.py [--reminders 500] [--spread 0]

Starts its own nats-server and uses a throw-away database on the PostgreSQL at
CW_BENCH_ADMIN_URL (default postgresql://postgres@127.0.0.1:5432/postgres), so it never
touches a running system. The robots are the tests' local DingTalk and WeCom servers with the
real limits: 20 messages in any 60 s, then DingTalk throttles for 10 minutes. ``--spread``
publishes the burst over that many seconds instead of at once.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import nats

# The fake robots are the tests' (tests/support/robots.py), which the package does not install.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from contracts.reminders import Reminder
from services.common.entrypoints import initialise
from services.common.settings import Settings
from services.devstack.servers import OwnNats, create_database
from services.notifier.adapters.metrics import NotifierMetrics
from tests.support import reminder_messages as rm
from tests.support.notifier import count, notifier_in_process, notify_file
from tests.support.robots import FakeRobot

SECRET = "SECbench0123456789abcdef0123456789"
VENUES = [
    "连云区海州湾街道新海连农贸市场",
    "连云区墟沟街道苏宁广场超市",
    "连云区连云街道港城菜市场",
]


def burst(n: int) -> list[Reminder]:
    """Reminders with titles as long as the bureau's: venue, item, order, days overdue."""
    return [
        rm.reminder(
            i,
            venue_id=f"LY-FM-{i % 40:03d}",
            phones=(f"138{i % 97:08d}", "13900000001"),
            title_zh=f"【整改逾期】#{i} {VENUES[i % 3]}：FM-3F 防蝇防鼠设施不全，"
            f"交办单 LY-ZG-2023-{i:05d} 已逾期 {1 + i % 9} 天",
        )
        for i in range(1, n + 1)
    ]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def measure(args: argparse.Namespace, nats_url: str, admin_url: str, scratch: Path) -> None:
    name = f"cw_bench_{uuid.uuid4().hex[:8]}"
    await create_database(admin_url, name)
    os.environ["CW_BENCH_DINGTALK_SECRET"] = SECRET
    robots = {
        "dingtalk": FakeRobot("dingtalk", secret=SECRET),
        "wecom": FakeRobot("wecom", throttle_s=60.0),
    }
    try:
        for robot in robots.values():
            await robot.start()
        path = notify_file(
            scratch / "notify.toml",
            [
                {"name": "dingtalk", "kind": "dingtalk", "url": robots["dingtalk"].url,
                 "secret_env": "CW_BENCH_DINGTALK_SECRET"},
                {"name": "wecom", "kind": "wecom", "url": robots["wecom"].url},
            ],
        )  # fmt: skip
        settings = Settings(
            nats_url=nats_url,
            database_url=f"{admin_url.rpartition('/')[0]}/{name}",
            metrics_port=0,
            notify_file=path,
        )
        await initialise(settings)
        reminders = burst(args.reminders)
        metrics = NotifierMetrics()
        nc = await nats.connect(nats_url)
        js = nc.jetstream()
        async with notifier_in_process(settings, metrics) as task:
            started = time.monotonic()
            pause = args.spread / len(reminders)
            for r in reminders:
                await rm.publish(js, [r])
                if pause:
                    await asyncio.sleep(pause)
            published = time.monotonic() - started
            while any(len(set(r.numbers())) < len(reminders) for r in robots.values()):
                if task.done():
                    task.result()
                await asyncio.sleep(0.05)
        await nc.close()
        print(
            f"{len(reminders)} reminders published in {published:.2f} s"
            + (f" (spread over {args.spread:g} s)" if args.spread else " (at once)")
        )
        for kind, robot in robots.items():
            delays = [at - started for at in robot.arrivals().values()]
            messages = len(robot.accepted())
            merged = count(metrics, "cw_notifier_merged", target_kind=kind)
            print(
                f"{kind:<9} {messages:3d} messages ({merged:.0f} merged), every reminder there "
                f"after p50 {statistics.median(delays):6.2f} s, p99 {percentile(delays, 99):6.2f}"
                f" s, max {max(delays):6.2f} s; most in any 60 s: "
                f"{robot.most_in_any_window()}; throttled: {'yes' if robot.throttled() else 'no'}"
            )
        minutes = len(reminders) / 20
        print(f"one message per reminder at 20 a minute would need {minutes:.0f} minutes")
    finally:
        for robot in robots.values():
            await robot.stop()
        admin = await asyncpg.connect(admin_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reminders", type=int, default=500)
    parser.add_argument("--spread", type=float, default=0.0, help="seconds to publish over")
    args = parser.parse_args()
    admin_url = os.environ.get(
        "CW_BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    print(f"{platform.node()}: Python {platform.python_version()}, {os.cpu_count()} cores")
    scratch = Path(tempfile.mkdtemp(prefix="cw-bench-notifier-"))
    try:
        async with OwnNats(scratch / "nats") as server:
            await measure(args, server.url, admin_url, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
