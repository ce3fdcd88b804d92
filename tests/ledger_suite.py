"""One suite of the notifier's ledger rules, run on the in-memory ledger and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.consumer.ports import CheckpointRegression
from services.notifier.domain.model import StreamReminder
from services.notifier.domain.ports import Ledger
from services.notifier.domain.targets import Target
from tests.support.reminder_messages import reminder, subject, wire

T0 = datetime(2023, 4, 1, 2, 0, tzinfo=UTC)
ROBOT = Target("robot", "dingtalk", "http://robot/send?access_token=t")
DIGESTS = Target("digests", "wecom", "http://w/send?key=k", kinds=frozenset({"digest"}))
HOOK = Target("hook", "webhook", "http://gw/hook", per_minute=None)
TARGETS = (ROBOT, DIGESTS, HOOK)


def stream(*numbers: int, kind: str = "overdue") -> list[StreamReminder]:
    out = []
    for n in numbers:
        r = reminder(n, kind=kind)
        out.append(StreamReminder(n, r, wire(r), subject(r)))
    return out


class LedgerSuite:
    ledger: Ledger

    async def test_a_delivery_per_reminder_and_matching_target_once(self) -> None:
        assert await self.ledger.record(stream(1, 2), TARGETS, 2) == 4
        assert await self.ledger.record(stream(3, kind="digest"), TARGETS, 3) == 3
        assert await self.ledger.record(stream(1), TARGETS, 4) == 0  # recorded before
        assert await self.ledger.checkpoint() == 4
        waiting = await self.ledger.pending("robot", 10)
        assert [p.seq for p in waiting] == [1, 2, 3]
        assert waiting[0].reminder == reminder(1)
        assert waiting[0].raw == wire(reminder(1))
        assert waiting[0].subject == subject(reminder(1))
        assert [p.seq for p in await self.ledger.pending("digests", 10)] == [3]
        assert [p.seq for p in await self.ledger.pending("robot", 2)] == [1, 2]

    async def test_the_checkpoint_never_moves_back(self) -> None:
        await self.ledger.record(stream(1, 2), TARGETS, 5)
        with pytest.raises(CheckpointRegression):
            await self.ledger.record([], TARGETS, 4)
        assert await self.ledger.checkpoint() == 5

    async def test_done_deliveries_leave_the_queue_failed_ones_stay(self) -> None:
        await self.ledger.record(stream(1, 2, 3), TARGETS, 3)
        ids = [r.reminder.reminder_id for r in stream(1, 2, 3)]
        first = await self.ledger.begin("robot", ids[:2], T0)
        await self.ledger.finish("robot", first, ids[:2], outcome="retried", detail="HTTP 502",
                                 finished_at=T0 + timedelta(seconds=1))  # fmt: skip
        assert [p.seq for p in await self.ledger.pending("robot", 10)] == [1, 2, 3]
        second = await self.ledger.begin("robot", ids[:2], T0 + timedelta(seconds=5))
        await self.ledger.finish("robot", second, ids[:2], outcome="delivered", detail="",
                                 finished_at=T0 + timedelta(seconds=6))  # fmt: skip
        third = await self.ledger.begin("robot", ids[2:], T0 + timedelta(seconds=7))
        await self.ledger.finish("robot", third, ids[2:], outcome="dead_lettered",
                                 detail="robot_refused: errcode 310000",
                                 finished_at=T0 + timedelta(seconds=8))  # fmt: skip
        assert await self.ledger.pending("robot", 10) == []
        assert [p.seq for p in await self.ledger.pending("hook", 10)] == [1, 2, 3]  # untouched

    async def test_attempts_are_kept_with_their_end_and_a_throttle(self) -> None:
        await self.ledger.record(stream(1), TARGETS, 1)
        rid = [stream(1)[0].reminder.reminder_id]
        a = await self.ledger.begin("robot", rid, T0)
        await self.ledger.finish("robot", a, rid, outcome="throttled", detail="errcode 130101",
                                 finished_at=T0 + timedelta(seconds=1))  # fmt: skip
        await self.ledger.begin("robot", rid, T0 + timedelta(seconds=2))  # in flight
        attempts = sorted(
            await self.ledger.attempts("robot", T0 - timedelta(seconds=1)),
            key=lambda x: x.started_at,
        )
        assert [(x.started_at, x.finished_at, x.throttled) for x in attempts] == [
            (T0, T0 + timedelta(seconds=1), True),
            (T0 + timedelta(seconds=2), None, False),
        ]
        assert len(await self.ledger.attempts("robot", T0)) == 1  # only those after "since"
        assert await self.ledger.attempts("hook", T0 - timedelta(seconds=1)) == []
