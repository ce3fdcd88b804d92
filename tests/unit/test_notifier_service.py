"""The notifier's unit of work on fakes: budgets kept, bursts merged, refusals dead-lettered,
retries spaced, with a clock the test moves."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from services.notifier.adapters import dingtalk, wecom
from services.notifier.adapters.memory import MemoryLedger
from services.notifier.domain.messages import RobotFormat, RobotMessage
from services.notifier.domain.model import (
    Delivered,
    Outcome,
    Pending,
    Refused,
    SendResult,
    StreamReminder,
    Throttled,
    TryAgain,
)
from services.notifier.domain.targets import Target
from services.notifier.service import Dispatch, deliver_next
from tests.support.reminder_messages import reminder, subject, wire

pytestmark = pytest.mark.unit

T0 = datetime(2023, 4, 1, 2, 0, tzinfo=UTC)
MINUTE = timedelta(seconds=60)


@dataclass
class Clock:
    at: datetime = T0

    def now(self) -> datetime:
        return self.at


@dataclass
class Robot:
    clock: Clock
    format: RobotFormat = dingtalk.FORMAT
    latency: timedelta = timedelta(milliseconds=200)
    answers: list[SendResult] = field(default_factory=list)
    received: list[tuple[datetime, RobotMessage]] = field(default_factory=list)

    async def send(self, message: RobotMessage) -> SendResult:
        self.clock.at += self.latency  # the request takes a while
        self.received.append((self.clock.at, message))
        return self.answers.pop(0) if self.answers else Delivered()


@dataclass
class Hook:
    answers: list[SendResult] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)

    async def send(self, pending: Pending) -> SendResult:
        self.keys.append(str(pending.reminder_id))
        return self.answers.pop(0) if self.answers else Delivered()

    async def send_alert(self, body: bytes, key: str) -> SendResult:
        self.keys.append(key)
        return self.answers.pop(0) if self.answers else Delivered()


@dataclass
class Refusals:
    letters: list[tuple[str, str, str]] = field(default_factory=list)

    async def publish(self, pending: Pending, target: Target, refused: Refused) -> None:
        self.letters.append((str(pending.reminder_id), target.name, refused.reason))


@dataclass
class Observer:
    counts: dict[tuple[str, str], int] = field(default_factory=dict)
    merges: int = 0

    def delivered(self, target_kind: str, outcome: Outcome, count: int) -> None:
        key = (target_kind, outcome)
        self.counts[key] = self.counts.get(key, 0) + count

    def merged(self, target_kind: str) -> None:
        self.merges += 1

    def alerted(self, target_kind: str, outcome: Outcome) -> None:
        key = ("alert:" + target_kind, outcome)
        self.counts[key] = self.counts.get(key, 0) + 1


def stream(n: int, start: int = 1, *, long: bool = False) -> list[StreamReminder]:
    out = []
    for i in range(start, start + n):
        title = (
            f"【整改逾期】#{i} 连云区海州湾街道新海连农贸市场：FM-3F 防蝇防鼠设施不全，"
            f"交办单 LY-ZG-2023-{i:05d} 已逾期 3 天"
        )
        r = reminder(i, title_zh=title) if long else reminder(i)
        out.append(StreamReminder(i, r, wire(r), subject(r)))
    return out


async def drain(d: Dispatch, clock: Clock, until: timedelta = 30 * MINUTE) -> None:
    """Call the unit of work as the runner does, moving the clock to each moment it names."""
    while clock.at < T0 + until:
        wait = await deliver_next(d)
        if wait is None:
            return
        clock.at = max(clock.at, wait)


def windows_respected(times: Sequence[datetime], per_minute: int, window: timedelta) -> bool:
    return all(sum(1 for u in times if t <= u < t + window) <= per_minute for t in times)


def dispatch(target: Target, ledger: MemoryLedger, clock: Clock, **kw: object) -> Dispatch:
    return Dispatch(target, ledger, Refusals(), clock, Observer(), **kw)  # type: ignore[arg-type]


ROBOT = Target("robot", "dingtalk", "http://robot/send?access_token=t")


async def test_a_burst_of_500_reaches_the_robot_within_two_minutes_without_exceeding() -> None:
    clock, ledger = Clock(), MemoryLedger()
    robot = Robot(clock)
    await ledger.record(stream(3), [ROBOT], 3)  # the first ones, before the burst
    d = dispatch(ROBOT, ledger, clock, robot=robot)
    await deliver_next(d)
    await ledger.record(stream(497, start=4), [ROBOT], 500)
    await drain(d, clock)
    got = [rid for _, m in robot.received for rid in m.reminder_ids]
    assert sorted(got) == sorted(r.reminder.reminder_id for r in stream(500))  # each once
    times = [t for t, _ in robot.received]
    assert windows_respected(times, 20, MINUTE)
    assert times[-1] - T0 <= 2 * MINUTE
    assert d.observer.merges > 0  # type: ignore[attr-defined]
    assert d.observer.counts == {("dingtalk", "delivered"): 500}  # type: ignore[attr-defined]


async def test_a_throttled_robot_waits_ten_windows_and_then_gets_everything() -> None:
    clock, ledger = Clock(), MemoryLedger()
    robot = Robot(clock, answers=[Delivered(), Throttled("errcode 130101: send too fast")])
    await ledger.record(stream(5), [ROBOT], 5)
    d = dispatch(ROBOT, ledger, clock, robot=robot)
    await drain(d, clock, until=60 * MINUTE)
    times = [t for t, _ in robot.received]
    assert times[2] - times[1] >= 10 * MINUTE
    got = [rid for _, m in robot.received[2:] for rid in m.reminder_ids]
    assert len(got) + 1 == 5  # the throttled message's reminders came again, once
    assert all(ledger.state(r.reminder.reminder_id, "robot") == "delivered" for r in stream(5))


async def test_a_webhook_is_retried_after_retry_after_and_a_refusal_is_a_dead_letter() -> None:
    clock, ledger = Clock(), MemoryLedger()
    hook_target = Target("sms", "webhook", "http://gw/hook", per_minute=None)
    hook = Hook(
        answers=[
            TryAgain("HTTP 429: slow down", retry_after_s=30),
            TryAgain("HTTP 500: oops"),
            Delivered(),
            Refused("HTTP 400: bad request", "http_status"),
        ]
    )
    await ledger.record(stream(3), [hook_target], 3)
    d = dispatch(hook_target, ledger, clock, webhook=hook)
    first_wait = await deliver_next(d)
    assert first_wait is not None and first_wait >= T0 + timedelta(seconds=30)
    assert await deliver_next(d) == first_wait  # called early (woken): nothing is sent
    await drain(d, clock)
    one, two, three = (str(r.reminder.reminder_id) for r in stream(3))
    assert hook.keys == [one, one, one, two, three]  # the same key each time; others wait
    assert d.refusals.letters == [(two, "sms", "HTTP 400: bad request")]  # type: ignore[attr-defined]
    assert [ledger.state(r.reminder.reminder_id, "sms") for r in stream(3)] == [
        "delivered", "dead_lettered", "delivered"
    ]  # fmt: skip


async def test_filters_decide_which_targets_get_a_delivery_and_a_reminder_is_recorded_once() -> (
    None
):
    ledger = MemoryLedger()
    only_digest = Target("digest-only", "wecom", "http://w", kinds=frozenset({"digest"}))
    other_district = Target("elsewhere", "wecom", "http://e", districts=frozenset({"320705"}))
    added = await ledger.record(stream(2), [ROBOT, only_digest, other_district], 2)
    assert added == 2
    assert await ledger.record(stream(2), [ROBOT, only_digest, other_district], 2) == 0
    assert len(await ledger.pending("robot", 10)) == 2
    assert await ledger.pending("digest-only", 10) == []


async def test_a_burst_spread_over_30_seconds_reaches_a_wecom_robot_within_two_minutes() -> None:
    clock, ledger = Clock(), MemoryLedger()
    # A quick robot: each reminder could go alone before the next one comes.
    robot = Robot(clock, format=wecom.FORMAT, latency=timedelta(milliseconds=5))
    target = Target("wecom", "wecom", "http://robot/send?key=k")
    d = dispatch(target, ledger, clock, robot=robot)
    burst = stream(500, long=True)  # titles as long as the bureau's
    published = {r.reminder.reminder_id: T0 + timedelta(seconds=r.seq * 0.06) for r in burst}
    arriving = list(burst)
    while arriving or await ledger.pending("wecom", 1):
        due = [r for r in arriving if published[r.reminder.reminder_id] <= clock.at]
        if due:
            await ledger.record(due, [target], due[-1].seq)
            arriving = arriving[len(due) :]
        wait = await deliver_next(d)
        if wait is None:  # idle until the next reminder comes
            clock.at = published[arriving[0].reminder.reminder_id]
        else:
            clock.at = max(clock.at, wait)
    first: dict[UUID, datetime] = {}
    for at, message in robot.received:
        for rid in message.reminder_ids:
            first.setdefault(rid, at)
    assert len(first) == 500
    # Within one window, not two: once half the budget is used, messages are paced, so the
    # reminders that keep coming are gathered instead of spending the budget one by one.
    assert max(first[rid] - published[rid] for rid in first) <= MINUTE
    assert windows_respected([t for t, _ in robot.received], 20, MINUTE)
