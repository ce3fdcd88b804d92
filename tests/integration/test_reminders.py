"""The reminders service against real NATS and PostgreSQL, with a campaign in seconds: each kind
fires at its moment and once, an extension reschedules, a recheck cancels, a rebound alerts,
history older than ``stale_after`` sends nothing."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import asyncpg
import pytest

from contracts import Event
from contracts.reminders import reminder_id
from services.common.entrypoints import initialise
from services.common.settings import Settings
from services.reminders.adapters.metrics import ReminderMetrics
from tests import factories as f
from tests.integration.conftest import Harness
from tests.support.reminders import (
    Published,
    campaign_file,
    published,
    reminders_in_process,
    soon,
)
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration
V = "LY-FM-007"
D = f.DISTRICT


def officer_venue(venue_id: str, when: datetime) -> Event:
    data = {
        "name": "海连路农贸市场",
        "kind": "farmers_market",
        "first_responsible": {"name": "王建国", "phone": "13800000000"},
        "officer": {"name": "李明", "phone": "13700000000"},
    }
    return f.event("VenueRegistered", venue_id, when, data)


@pytest.fixture
async def harness_in_seconds(harness: Harness, tmp_path: Path) -> Harness:
    harness.settings = harness.settings.model_copy(
        update={
            "campaign_file": campaign_file(tmp_path, digest_at=soon(5)),
            "reminders_fetch_wait": timedelta(milliseconds=200),
        }
    )
    return harness


async def wait_for_ids(
    harness: Harness, ids: set[UUID], task: asyncio.Task[None], within: float = 30
) -> list[Published]:
    got: list[Published] = []

    async def arrived() -> bool:
        got[:] = await published(harness.nc)
        return ids <= {p.reminder.reminder_id for p in got}

    await eventually(
        arrived, within=within, what=f"{len(ids)} reminders in CW_REMINDERS",
        running=[task],
    )  # fmt: skip
    return got


def assert_once(got: list[Published]) -> None:
    counts = Counter(p.reminder.reminder_id for p in got)
    assert [rid for rid, n in counts.items() if n > 1] == []
    for p in got:
        assert p.msg_id == str(p.reminder.reminder_id)
        assert p.reminder.issued_at >= p.reminder.fire_at  # never before its moment


async def test_each_kind_fires_at_its_moment_and_once(harness_in_seconds: Harness) -> None:
    h = harness_in_seconds
    t0 = soon(0)
    due = soon(4)
    closed = soon(0.5)
    await h.publish([
        officer_venue(V, t0),
        f.issue(V, "NO-ORDER", t0),
        f.issue(V, "DUE", t0),
        f.due(V, "DUE", t0, due, order_no="LY-ZG-2023-031"),
        f.issue(V, "CLOSED", t0, item_code="MALL-AED"),
        f.recheck_passed(V, "CLOSED", closed),
        f.issue("UNREG", "REBOUND-0", t0, item_code="FM-WC"),
        f.recheck_passed("UNREG", "REBOUND-0", closed),
        f.issue("UNREG", "REBOUND", soon(1), item_code="FM-WC"),
    ])  # fmt: skip
    sec = timedelta(seconds=1)
    expected: dict[UUID, object] = {
        reminder_id(D, "no_order", issue_id="NO-ORDER"): t0 + 2 * sec,
        reminder_id(D, "due_soon", issue_id="DUE", level=1, deadline=due): due - 3 * sec,
        reminder_id(D, "due_soon", issue_id="DUE", level=2, deadline=due): due - sec,
        reminder_id(D, "overdue", issue_id="DUE", deadline=due): due,
        reminder_id(D, "escalation", issue_id="DUE", level=1, deadline=due): due + sec,
        reminder_id(D, "escalation", issue_id="DUE", level=2, deadline=due): due + 2 * sec,
        reminder_id(D, "look_back_due", issue_id="CLOSED"): closed + timedelta(seconds=2),
        reminder_id(D, "rebound_detected", issue_id="REBOUND"): None,
        reminder_id(D, "no_order", issue_id="REBOUND"): None,
        reminder_id(D, "look_back_due", issue_id="REBOUND-0"): closed + timedelta(seconds=2),
        reminder_id(D, "no_order", issue_id="DUE"): "never",
        reminder_id(D, "no_order", issue_id="CLOSED"): "never",
    }  # fmt: skip
    wanted = {rid for rid, at in expected.items() if at != "never"}
    metrics = ReminderMetrics()
    async with reminders_in_process(h.settings, metrics) as task:
        await wait_for_ids(h, wanted, task)
        digest = soon(0)
        got = await wait_for_ids(h, wanted | {reminder_id(D, "digest", local_date=digest.date())},
                                 task)  # fmt: skip
    assert_once(got)
    by_id = {p.reminder.reminder_id: p.reminder for p in got}
    for rid, at in expected.items():
        if at == "never":
            assert rid not in by_id
        elif at is not None:
            assert by_id[rid].fire_at == at, by_id[rid].kind
    overdue = by_id[reminder_id(D, "overdue", issue_id="DUE", deadline=due)]
    assert overdue.venue_name == "海连路农贸市场" and overdue.order_no == "LY-ZG-2023-031"
    assert [r.role for r in overdue.recipients] == ["first_responsible", "officer"]
    assert "王建国" in overdue.body_zh and "LY-ZG-2023-031" in overdue.body_zh
    rebound = by_id[reminder_id(D, "rebound_detected", issue_id="REBOUND")]
    assert rebound.venue_name is None and [r.role for r in rebound.recipients] == ["deputy_head"]
    escalation = by_id[reminder_id(D, "escalation", issue_id="DUE", level=2, deadline=due)]
    assert [r.role for r in escalation.recipients] == ["officer", "deputy_head"]
    digest_reminder = next(p for p in got if p.reminder.kind == "digest")
    assert digest_reminder.subject == f"cw.reminders.{D}.digest"
    assert "在办问题" in digest_reminder.reminder.body_zh
    # Partners (a webhook gets this JSON as published) read the campaign's clock: +08:00.
    eight = timedelta(hours=8)
    for p in got:
        r = p.reminder
        assert {t.utcoffset() for t in (r.fire_at, r.issued_at, r.due_at) if t} == {eight}
    assert metrics.registry.get_sample_value("cw_reminders_sent_total", {"kind": "overdue"}) == 1
    assert metrics.registry.get_sample_value("cw_reminders_delay_seconds_count") == len(got)


async def test_an_extension_reschedules(harness_in_seconds: Harness) -> None:
    h = harness_in_seconds
    t0 = soon(0)
    first, second = soon(5), soon(7)
    await h.publish([f.issue(V, "I1", t0), f.due(V, "I1", t0, first),
                     f.due(V, "I1", t0, second, order_no="ZG-2")])  # fmt: skip
    async with reminders_in_process(h.settings) as task:
        final = reminder_id(D, "escalation", issue_id="I1", level=2, deadline=second)
        got = await wait_for_ids(h, {final}, task)
    assert_once(got)
    deadlines = {p.reminder.due_at for p in got if p.reminder.kind != "digest"}
    assert deadlines == {second}
    assert Counter(p.reminder.kind for p in got if p.reminder.kind != "digest") == {
        "due_soon": 2, "overdue": 1, "escalation": 2,
    }  # fmt: skip


async def test_a_recheck_cancels_and_schedules_the_look_back(harness_in_seconds: Harness) -> None:
    h = harness_in_seconds
    t0 = soon(0)
    due = soon(4)
    async with reminders_in_process(h.settings) as task:
        await h.publish([f.issue(V, "I1", t0), f.due(V, "I1", t0, due)])

        async def scheduled() -> bool:
            n = await h.db.fetchval(
                "SELECT count(*) FROM cw_reminders.timers WHERE state = 'pending'"
            )
            return bool(n >= 5)

        await eventually(scheduled, within=10, what="the deadline's timers", running=[task])
        closed = soon(0)
        await h.publish([f.recheck_failed(V, "I1", closed), f.recheck_passed(V, "I1", closed)])
        look_back = reminder_id(D, "look_back_due", issue_id="I1")
        got = await wait_for_ids(h, {look_back}, task)
    assert [p.reminder.kind for p in got if p.reminder.kind != "digest"] == ["look_back_due"]
    states = Counter(
        r["state"]
        for r in await h.db.fetch(
            "SELECT state FROM cw_reminders.timers"
            " WHERE issue_id = 'I1' AND kind <> 'look_back_due'"
        )
    )
    assert states == {"cancelled": 6}


async def test_history_older_than_stale_after_sends_nothing(
    harness: Harness, tmp_path: Path
) -> None:
    h = harness
    h.settings = h.settings.model_copy(
        update={"campaign_file": campaign_file(tmp_path, order_within="3d", due_soon=("72h", "24h"),
                                               escalate_every="72h", look_back_after="30d",
                                               stale_after="1h")}
    )  # fmt: skip
    old = f.at("2023-03-01 10:00")
    history = []
    for i in range(20):
        history += [
            f.issue(V, f"OLD-{i}", old),
            f.due(V, f"OLD-{i}", old, old + timedelta(days=10)),
        ]
        if i % 2:
            history.append(f.recheck_passed(V, f"OLD-{i}", old + timedelta(days=12)))
    history += [f.issue(V, "REBOUND-OLD", old + timedelta(days=20))]
    recent_due = soon(-600)  # 10 minutes ago: within stale_after, overdue goes out at once
    history += [f.issue(V, "RECENT", soon(-3600)), f.due(V, "RECENT", soon(-3600), recent_due)]
    await h.publish(history)
    metrics = ReminderMetrics()
    async with reminders_in_process(h.settings, metrics) as task:
        recent = reminder_id(D, "overdue", issue_id="RECENT", deadline=recent_due)
        got = await wait_for_ids(h, {recent}, task)
    assert [p.reminder.reminder_id for p in got] == [recent]
    pending = await h.db.fetch(
        "SELECT kind, issue_id FROM cw_reminders.timers WHERE state = 'pending' ORDER BY kind"
    )
    # The recent issue's escalations (in 3 and 6 days) and the district's next digest wait.
    assert {(r["kind"], r["issue_id"]) for r in pending} == {
        ("digest", None), ("escalation", "RECENT"),
    }  # fmt: skip
    skipped = metrics.registry.get_sample_value(
        "cw_reminders_skipped_total", {"kind": "overdue", "reason": "stale"}
    )
    assert skipped == 20


async def test_init_brings_the_reminders_duplicate_window_to_the_setting(
    settings: Settings,
) -> None:
    lines = await initialise(settings)
    assert any("CW_REMINDERS: created" in line for line in lines)
    longer = settings.model_copy(update={"reminders_duplicate_window": timedelta(hours=48)})
    lines = await initialise(longer)
    (line,) = [line for line in lines if "CW_REMINDERS" in line]
    assert "duplicate_window changed from 1d to 2d" in line
    lines = await initialise(longer)
    assert any("CW_REMINDERS: exists, left unchanged" in line for line in lines)
    conn = await asyncpg.connect(settings.database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM cw_reminders.timers") == 0
    finally:
        await conn.close()


async def _five_overdue(h: Harness, task: asyncio.Task[None]) -> list[UUID]:
    """Publish five issues whose deadlines come 0.2 s apart from 3 s on; wait until scheduled."""
    t0 = soon(0)
    dues = [soon(3 + i * 0.2) for i in range(5)]
    events = [f.issue(V, f"I{i}", t0) for i in range(5)]
    await h.publish(events + [f.due(V, f"I{i}", t0, due) for i, due in enumerate(dues)])

    async def scheduled() -> bool:
        n = await h.db.fetchval("SELECT count(*) FROM cw_reminders.timers WHERE kind = 'overdue'")
        return bool(n == len(dues))

    await eventually(scheduled, within=10, what="the overdue timers", running=[task])
    return [reminder_id(D, "overdue", issue_id=f"I{i}", deadline=d) for i, d in enumerate(dues)]


async def test_a_hot_standby_takes_over(harness_in_seconds: Harness) -> None:
    h = harness_in_seconds
    async with reminders_in_process(h.settings) as a:
        overdue = await _five_overdue(h, a)
        async with reminders_in_process(h.settings) as b:

            async def b_waits() -> bool:
                return bool(await h.db.fetchval(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                ))  # fmt: skip

            await eventually(b_waits, within=10, what="B waits as standby", running=[b])
            a.cancel()  # A goes away before the deadlines: its lease passes to B
            with contextlib.suppress(BaseException):
                await a
            got = await wait_for_ids(h, set(overdue), b)
    assert_once(got)


async def test_what_fell_due_while_down_goes_out_on_start_oldest_first(
    harness_in_seconds: Harness,
) -> None:
    h = harness_in_seconds
    async with reminders_in_process(h.settings) as a:
        overdue = await _five_overdue(h, a)
    last = await h.db.fetchval(
        "SELECT max(fire_at) FROM cw_reminders.timers WHERE kind = 'overdue'"
    )

    async def all_due() -> bool:
        return bool(datetime.now(UTC) > last)

    await eventually(all_due, within=10, what="every deadline passed")
    assert await published(h.nc) == []  # the service was down
    async with reminders_in_process(h.settings) as b:
        got = await wait_for_ids(h, set(overdue), b)
    assert_once(got)
    assert [p.reminder.reminder_id for p in got if p.reminder.kind == "overdue"] == overdue
