"""``kill -9`` of ``cw run reminders`` during a burst of due reminders loses none and puts no
second copy of any into ``CW_REMINDERS`` (counted by ``reminder_id``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from uuid import UUID

import nats
import pytest

from contracts.reminders import reminder_id
from contracts.wire import EVENTS_STREAM
from services.common.entrypoints import initialise
from services.common.settings import Settings
from tests import factories as f
from tests.support.nothing_lost import publish_pipelined
from tests.support.processes import ProjectorProcess, cw_env
from tests.support.reminders import campaign_file, published, published_count, soon
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e
ISSUES = 300
KILLS_AT = (150, 450)
"""Kill the service when CW_REMINDERS holds this many reminders (of 900)."""


@pytest.fixture
def campaign(tmp_path: Path) -> Path:
    return campaign_file(
        tmp_path, order_within="1h", due_soon=("2s",), escalate_every="1s", escalate_max=1,
        look_back_after="1h", stale_after="1h", digest_at=soon(-3600),
    )  # fmt: skip


@pytest.fixture
def service(
    nats_url: str, database_url: str, tmp_path: Path, campaign: Path
) -> Iterator[ProjectorProcess]:
    env = cw_env(
        nats_url, database_url, campaign_file=str(campaign), reminders_metrics_port="0",
        reminders_fetch_wait="200ms",
    )  # fmt: skip
    p = ProjectorProcess(env, tmp_path / "reminders.log", service="reminders")
    yield p
    p.ensure_gone()


async def test_kill_9_during_a_burst_loses_nothing_and_doubles_nothing(
    settings: Settings, service: ProjectorProcess
) -> None:
    await initialise(settings)
    nc = await nats.connect(settings.nats_url)
    try:
        # The deadlines count from when the service reads CW_EVENTS, not from its start (seconds
        # on a loaded machine): a due_soon whose moment has gone when it is read is skipped.
        service.start()

        async def reading() -> bool:
            assert service.proc is not None and service.proc.poll() is None, service.tail()
            names = await nc.jetstream().consumers_info(EVENTS_STREAM)
            return any(c.name == settings.reminders_durable for c in names)

        await eventually(reading, within=60, what="the service reads CW_EVENTS")
        base = soon(6)
        events = []
        expected: set[UUID] = set()
        for i in range(ISSUES):
            due = base + timedelta(milliseconds=10 * (i % 300))
            venue, issue = f"V{i % 37}", f"I{i}"
            events += [f.issue(venue, issue, base - timedelta(hours=1)),
                       f.due(venue, issue, base - timedelta(hours=1), due)]  # fmt: skip
            expected |= {
                reminder_id(f.DISTRICT, "due_soon", issue_id=issue, level=1, deadline=due),
                reminder_id(f.DISTRICT, "overdue", issue_id=issue, deadline=due),
                reminder_id(f.DISTRICT, "escalation", issue_id=issue, level=1, deadline=due),
            }
        await publish_pipelined(nc, events)
        for at in KILLS_AT:

            async def reached(at: int = at) -> bool:
                assert service.proc is not None and service.proc.poll() is None, service.tail()
                return await published_count(nc) >= at

            await eventually(reached, within=60, what=f"{at} reminders published")
            service.kill()
            service.start()

        async def all_there() -> bool:
            assert service.proc is not None and service.proc.poll() is None, service.tail()
            if await published_count(nc) < len(expected):
                return False
            return expected <= {p.reminder.reminder_id for p in await published(nc)}

        await eventually(all_there, within=90, what=f"all {len(expected)} reminders")
        assert service.stop() == 0, service.tail()
        got = await published(nc)
        counts = Counter(p.reminder.reminder_id for p in got)
        assert [rid for rid, n in counts.items() if n > 1] == []
        assert set(counts) == expected
        assert all(p.msg_id == str(p.reminder.reminder_id) for p in got)
    finally:
        await nc.close()
