"""``cw tracking reset reminders|notifier`` against real NATS and PostgreSQL: refused while the
stream is the one followed; on a stream replaced by one with the whole history under new
sequences, the stalled service replays it from its start by itself, and does nothing twice."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from datetime import timedelta
from functools import partial
from pathlib import Path

import asyncpg
import pytest
from nats.aio.client import Client

from contracts import Event
from services.common.entrypoints import initialise
from services.common.settings import Settings
from services.consumer import loop
from services.consumer.health import Health
from services.devstack.system import free_port
from services.notifier.adapters.metrics import NotifierMetrics
from services.notifier.bootstrap import run_notifier
from services.reminders.adapters.metrics import ReminderMetrics
from services.reminders.bootstrap import run_reminders
from tests import factories as f
from tests.integration.conftest import Harness
from tests.support import reminder_messages as rm
from tests.support.in_process import service_in_process
from tests.support.notifier import notify_file
from tests.support.processes import cw, cw_env
from tests.support.reminders import campaign_file, published, soon
from tests.support.replaced_streams import recreate_stream
from tests.support.robots import FakeWebhook
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration
V = "LY-FM-007"


@pytest.fixture(autouse=True)
def quick_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stalled consumer looks at its stream again every 0.1 s instead of 30 s."""
    monkeypatch.setattr(loop, "RECHECK_S", 0.1)


def tracking_reset(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return cw(cw_env(settings.nats_url, settings.database_url), "tracking", "reset", *args)


async def test_cw_tracking_reset_reminders_replays_a_replaced_stream_and_does_nothing_twice(
    harness: Harness, tmp_path: Path
) -> None:
    settings = harness.settings.model_copy(
        update={
            # No digest while the test runs: only the two reminders below are due.
            "campaign_file": campaign_file(tmp_path, digest_at=soon(3600)),
            "reminders_fetch_wait": timedelta(milliseconds=200),
        }
    )
    t0 = soon(0)
    history: list[Event] = [
        f.venue(V, t0),
        f.issue(V, "NO-ORDER-1", t0),  # no order within 2 s: a reminder
        f.issue(V, "NO-ORDER-2", t0),
        f.issue(V, "LATER", t0),
        f.due(V, "LATER", t0, soon(3600)),  # timers far ahead: pending throughout
    ]
    await harness.publish(history)
    health = Health()
    runner = partial(run_reminders, health=health)
    timers = "SELECT reminder_id, state FROM cw_reminders.timers ORDER BY reminder_id"
    outbox = "SELECT reminder_id, published_at FROM cw_reminders.outbox ORDER BY reminder_id"
    tracking = "SELECT stream_seq, message_id FROM cw_reminders.checkpoint"
    async with service_in_process(runner, settings, ReminderMetrics()) as task:

        async def two_sent() -> bool:
            sent = {p.reminder.issue_id for p in await published(harness.nc)}
            done = await harness.rows(tracking) == [
                {"stream_seq": 5, "message_id": str(history[-1].event_id)}
            ]
            return done and sent == {"NO-ORDER-1", "NO-ORDER-2"}

        await eventually(two_sent, within=30, what="two reminders sent", running=[task])
        before = (await harness.rows(timers), await harness.rows(outbox))
        assert [r["state"] for r in before[0]].count("pending") >= 1

        refused = tracking_reset(settings, "reminders")
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert refused.stderr == (
            "cw tracking reset: nothing to reset: CW_EVENTS is the stream the reminders followed "
            f"(its checkpoint is message {history[-1].event_id} at sequence 5, and CW_EVENTS "
            "holds it); --force resets all the same\n"
        )

        # CW_EVENTS created again, the whole history in it under new sequences.
        await recreate_stream(harness.nc, "CW_EVENTS")
        await harness.publish(history[::-1])

        async def stalled() -> bool:
            return health.replaced is not None and "holds message" in health.replaced

        await eventually(stalled, within=30, what="the reminders stall", running=[task])
        done = tracking_reset(settings, "reminders")
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout == (
            "tracking reset: the reminders replays CW_EVENTS from its start at its next check "
            f"(within 30 s); its checkpoint was message {history[-1].event_id} at sequence 5: "
            f"CW_EVENTS is not the stream the reminders followed: its checkpoint is message "
            f"{history[-1].event_id} at sequence 5, but CW_EVENTS holds message "
            f"{history[0].event_id} there (another stream of that name)\n"
        )

        async def resumed() -> bool:
            at = await harness.rows(tracking)
            return health.replaced is None and at == [
                {"stream_seq": 5, "message_id": str(history[0].event_id)}
            ]

        await eventually(resumed, within=30, what="the reminders resume", running=[task])
        # One more event goes through (one that makes no reminder): the consumer is live again.
        await harness.publish([f.inspection(V, soon(0))])

        async def new_one() -> bool:
            return [r["stream_seq"] for r in await harness.rows(tracking)] == [6]

        await eventually(new_one, within=30, what="the next event", running=[task])
    # Five events applied again under new sequences: no timer, no outbox entry, no reminder more.
    assert (await harness.rows(timers), await harness.rows(outbox)) == before
    assert sorted(p.reminder.issue_id or "" for p in await published(harness.nc)) == [
        "NO-ORDER-1",
        "NO-ORDER-2",
    ]


@pytest.fixture
async def webhook() -> AsyncIterator[FakeWebhook]:
    hook = FakeWebhook()
    await hook.start()
    yield hook
    await hook.stop()


async def test_cw_tracking_reset_notifier_replays_a_replaced_stream_and_sends_nothing_twice(
    settings: Settings, nc: Client, tmp_path: Path, webhook: FakeWebhook
) -> None:
    await initialise(settings)
    settings = settings.model_copy(
        update={
            "notify_file": notify_file(
                tmp_path / "notify.toml",
                [{"name": "sms-gateway", "kind": "webhook", "url": webhook.url}],
            )
        }
    )
    sent = [rm.reminder(n) for n in (1, 2, 3)]
    await rm.publish(nc.jetstream(), sent)
    health = Health()
    runner = partial(run_notifier, health=health)
    tracking = "SELECT stream_seq, message_id FROM cw_notifier.checkpoints"
    db = await asyncpg.connect(settings.database_url)
    try:
        async with service_in_process(runner, settings, NotifierMetrics()) as task:

            async def all_delivered() -> bool:
                at = [dict(r) for r in await db.fetch(tracking)]
                return len(webhook.calls) == 3 and at == [
                    {"stream_seq": 3, "message_id": str(sent[-1].reminder_id)}
                ]

            await eventually(all_delivered, within=30, what="3 deliveries", running=[task])
            refused = tracking_reset(settings, "notifier")
            assert refused.returncode == 1, refused.stdout + refused.stderr
            assert "nothing to reset: CW_REMINDERS is the stream the notifier followed" in (
                refused.stderr
            )

            await recreate_stream(nc, "CW_REMINDERS")
            await rm.publish(nc.jetstream(), sent[::-1])

            async def stalled() -> bool:
                return health.replaced is not None and "holds message" in health.replaced

            await eventually(stalled, within=30, what="the notifier stalls", running=[task])
            done = tracking_reset(settings, "notifier")
            assert done.returncode == 0, done.stdout + done.stderr
            assert done.stdout.startswith(
                "tracking reset: the notifier replays CW_REMINDERS from its start at its next "
                f"check (within 30 s); its checkpoint was message {sent[-1].reminder_id} at "
                "sequence 3: CW_REMINDERS is not the stream the notifier followed"
            )

            async def resumed() -> bool:
                at = [dict(r) for r in await db.fetch(tracking)]
                return health.replaced is None and at == [
                    {"stream_seq": 3, "message_id": str(sent[0].reminder_id)}
                ]

            await eventually(resumed, within=30, what="the notifier resumes", running=[task])
            # A new reminder is delivered: the notifier is live on the new stream.
            await rm.publish(nc.jetstream(), [rm.reminder(4)])

            async def fourth() -> bool:
                return len(webhook.calls) == 4

            await eventually(fourth, within=30, what="the 4th delivery", running=[task])
        assert webhook.keys() == [str(r.reminder_id) for r in [*sent, rm.reminder(4)]]

        # Stopped, and forced although the stream is the one followed: it replays all four.
        done = tracking_reset(settings, "notifier", "--force")
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.endswith(
            "CW_REMINDERS may be the stream it followed; reset with --force\n"
        )
        assert [dict(r) for r in await db.fetch(tracking)] == [
            {"stream_seq": 0, "message_id": None}
        ]
        async with service_in_process(runner, settings, NotifierMetrics()) as task:

            async def replayed() -> bool:
                return [r["stream_seq"] for r in await db.fetch(tracking)] == [4]

            await eventually(replayed, within=30, what="the replay", running=[task])
        assert len(webhook.calls) == 4
        deliveries = await db.fetchval("SELECT count(*) FROM cw_notifier.deliveries")
        assert deliveries == 4
    finally:
        await db.close()


async def test_a_reset_that_cannot_reach_a_server_says_so_in_one_line(
    nats_url: str, database_url: str
) -> None:
    away = f"127.0.0.1:{free_port()}"
    for env in (
        cw_env(f"nats://{away}", database_url),
        cw_env(nats_url, f"postgresql://postgres:secret@{away}/chuangwei"),
    ):
        done = cw(env, "tracking", "reset", "reminders")
        assert done.returncode == 2, done.stdout + done.stderr
        assert done.stderr.startswith("cw tracking reset: cannot reach ")
        assert done.stderr.count("\n") == 1 and "secret" not in done.stderr
    done = cw(cw_env(nats_url, database_url), "tracking", "reset", "notifier")  # no cw init
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.startswith("cw tracking reset: ") and "run `cw init` first" in done.stderr
