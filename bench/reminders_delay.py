"""Reminder delay: how long after its fire time a reminder is in ``CW_REMINDERS``, with 10,000
pending timers.

    .venv/bin/python bench/reminders_delay.py [--timers 10000] [--spread 30] [--burst 1000]

Starts its own nats-server and uses a throw-away database (see ``projector_throughput.py``).
The reminders service (``run_reminders``, what ``cw run reminders`` runs) follows a stream of
``--timers`` issues, each with a rectification order whose deadline falls in the ``--spread``
seconds after the timers are all scheduled: 10,000 pending ``overdue`` timers firing at about
330 a second. Then ``--burst`` deadlines at one and the same moment. The delay of each reminder
is the stream's own timestamp of the message minus the reminder's ``fire_at``.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import nats
from nats.aio.client import Client
from projector_throughput import own_stack

from contracts import decode_object, encode_event
from contracts.reminders import Reminder
from contracts.wire import REMINDERS_STREAM
from services.reminders.adapters.metrics import ReminderMetrics
from services.reminders.bootstrap import run_reminders

CAMPAIGN = """name = "bench"
timezone = "Asia/Shanghai"
[[phases]]
name = "self_check"
start = "2020-01-01"
[reminders]
order_within = "30d"
due_soon = []
escalate_max = 0
stale_after = "1h"
digest_at = "{digest}"
"""


def order_events(
    n: int, first_due: datetime, spread_s: float, tag: str
) -> list[tuple[str, bytes, str]]:
    found = datetime.now(UTC) - timedelta(minutes=5)
    out: list[tuple[str, bytes, str]] = []
    for i in range(n):
        due = first_due + timedelta(seconds=spread_s * i / max(1, n))
        venue, issue = f"V{i % 500:04d}", f"{tag}-{i:06d}"
        for event_type, data in (
            ("IssueFound", {"issue_id": issue, "item_code": "FM-3F", "severity": "major"}),
            ("RectificationDue", {"issue_id": issue, "order_no": f"ZG-{issue}",
                                  "due_at": due.isoformat(timespec="milliseconds")}),
        ):  # fmt: skip
            ev = decode_object({
                "event_id": str(uuid.uuid4()), "event_type": event_type,
                "schema_version": 1, "occurred_at": found.isoformat(), "source": "bench",
                "district": "320703", "venue_id": venue, "data": data,
            })  # fmt: skip
            out.append((ev.subject, encode_event(ev), str(ev.event_id)))
    return out


async def publish(nc: Client, events: list[tuple[str, bytes, str]]) -> None:
    js = nc.jetstream()
    for start in range(0, len(events), 2000):
        futures = [
            await js.publish_async(s, b, headers={"Nats-Msg-Id": m})
            for s, b, m in events[start : start + 2000]
        ]
        await asyncio.gather(*futures)


async def delays(nc: Client, first_seq: int) -> list[float]:
    js = nc.jetstream()
    info = await js.stream_info(REMINDERS_STREAM)
    out: list[float] = []
    for seq in range(first_seq, int(info.state.last_seq) + 1):
        m = await js.get_msg(REMINDERS_STREAM, seq)
        r = Reminder.model_validate_json(m.data or b"")
        if r.kind == "digest":
            continue
        assert m.time is not None
        stored = m.time if m.time.tzinfo else m.time.replace(tzinfo=UTC)
        out.append((stored - r.fire_at).total_seconds())
    return out


def summary(name: str, values: list[float]) -> str:
    q = statistics.quantiles(values, n=100, method="inclusive")
    return (
        f"{name}: {len(values)} reminders, delay p50 {q[49] * 1000:.0f} ms, "
        f"p99 {q[98] * 1000:.0f} ms, max {max(values) * 1000:.0f} ms"
    )


async def count(nc: Client) -> int:
    info = await nc.jetstream().stream_info(REMINDERS_STREAM)
    return int(info.state.messages)


async def until(check: Callable[[], Awaitable[bool]], within: float) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError("the bench did not finish in time")
        await asyncio.sleep(0.1)


async def main(timers: int, spread_s: float, burst: int) -> None:
    print(f"{platform.node()}, Python {platform.python_version()}")
    async with own_stack() as stack:
        settings = await stack.fresh()
        folder = Path(tempfile.mkdtemp(prefix="cw-bench-reminders-"))
        digest = (datetime.now(UTC) - timedelta(hours=1)).astimezone().strftime("%H:%M")
        (folder / "campaign.toml").write_text(CAMPAIGN.format(digest=digest), encoding="utf-8")
        settings = settings.model_copy(update={"campaign_file": folder / "campaign.toml"})
        nc = await nats.connect(settings.nats_url)
        db = await asyncpg.connect(settings.database_url)
        metrics = ReminderMetrics()
        stop = asyncio.Event()
        service = asyncio.create_task(run_reminders(settings, metrics, stop))
        try:
            lead = 20.0 + timers / 1000  # time to publish and schedule them all first
            first_due = datetime.now(UTC) + timedelta(seconds=lead)
            await publish(nc, order_events(timers, first_due, spread_s, "S"))

            async def scheduled() -> bool:
                n = await db.fetchval(
                    "SELECT count(*) FROM cw_reminders.timers WHERE state = 'pending'"
                    " AND kind = 'overdue'"
                )
                return bool(n >= timers)

            await until(scheduled, lead)
            left = (first_due - datetime.now(UTC)).total_seconds()
            print(f"{timers} pending timers scheduled, {left:.1f} s before the first fires")

            async def all_sent() -> bool:
                return await count(nc) >= timers

            await until(all_sent, spread_s + 60)
            spread = await delays(nc, 1)
            print(summary(f"{timers} timers over {spread_s:.0f} s", spread))

            before = int((await nc.jetstream().stream_info(REMINDERS_STREAM)).state.last_seq)
            burst_at = datetime.now(UTC) + timedelta(seconds=5 + burst / 1000)
            await publish(nc, order_events(burst, burst_at, 0, "B"))

            async def burst_sent() -> bool:
                return await count(nc) >= timers + burst

            await until(burst_sent, 120)
            print(summary(f"burst of {burst} at one moment", await delays(nc, before + 1)))
            hist = metrics.registry.get_sample_value("cw_reminders_delay_seconds_count")
            print(f"cw_reminders_delay_seconds_count {hist:.0f}")
        finally:
            stop.set()
            await asyncio.wait_for(service, 60)
            await db.close()
            await nc.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--timers", type=int, default=10_000)
    parser.add_argument("--spread", type=float, default=30.0)
    parser.add_argument("--burst", type=int, default=1000)
    args = parser.parse_args()
    asyncio.run(main(args.timers, args.spread, args.burst))
