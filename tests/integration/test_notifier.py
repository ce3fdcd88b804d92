"""The notifier against a real NATS, PostgreSQL and local servers that behave like DingTalk's
and WeCom's robots and another system's webhook."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from nats.aio.client import Client

from contracts.reminders import Reminder
from services.common.deadletters import TARGET
from services.common.entrypoints import initialise
from services.common.settings import Settings
from services.notifier.adapters.metrics import NotifierMetrics
from tests.support import reminder_messages as rm
from tests.support.nothing_lost import dead_letters
from tests.support.notifier import count, notifier_in_process, notify_file
from tests.support.robots import TOKEN, FakeRobot, FakeWebhook
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

SECRET = "SECtest0123456789abcdef0123456789"
SECRET_ENV = "CW_TEST_DINGTALK_SECRET"


@pytest.fixture
async def ready(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The test's servers, initialised (``cw init``: streams, leases, ``cw_notifier``)."""
    monkeypatch.setenv(SECRET_ENV, SECRET)
    await initialise(settings)
    return settings


@pytest.fixture
async def dingtalk() -> AsyncIterator[FakeRobot]:
    robot = FakeRobot("dingtalk", secret=SECRET)
    await robot.start()
    yield robot
    await robot.stop()


@pytest.fixture
async def wecom() -> AsyncIterator[FakeRobot]:
    robot = FakeRobot("wecom")
    await robot.start()
    yield robot
    await robot.stop()


@pytest.fixture
async def webhook() -> AsyncIterator[FakeWebhook]:
    hook = FakeWebhook()
    await hook.start()
    yield hook
    await hook.stop()


def with_targets(settings: Settings, path: Path, *targets: dict[str, object]) -> Settings:
    return settings.model_copy(update={"notify_file": notify_file(path, targets)})


def dingtalk_target(robot: FakeRobot, **kw: object) -> dict[str, object]:
    return {"name": "lianyun-dingtalk", "kind": "dingtalk", "url": robot.url,
            "secret_env": SECRET_ENV, **kw}  # fmt: skip


@pytest.fixture
def every_kind(
    dingtalk: FakeRobot, wecom: FakeRobot, webhook: FakeWebhook
) -> tuple[FakeRobot, FakeRobot, FakeWebhook]:
    return dingtalk, wecom, webhook


async def test_each_kind_of_target_gets_each_reminder_once(
    ready: Settings,
    nc: Client,
    tmp_path: Path,
    every_kind: tuple[FakeRobot, FakeRobot, FakeWebhook],
) -> None:
    dingtalk, wecom, webhook = every_kind
    settings = with_targets(
        ready,
        tmp_path / "notify.toml",
        dingtalk_target(dingtalk),
        {"name": "lianyun-wecom", "kind": "wecom", "url": wecom.url},
        {"name": "sms-gateway", "kind": "webhook", "url": webhook.url},
    )
    sent = [rm.reminder(n) for n in (1, 2, 3)]
    metrics = NotifierMetrics()
    async with notifier_in_process(settings, metrics) as task:
        await rm.publish(nc.jetstream(), sent)
        await rm.publish(nc.jetstream(), sent[:1])  # again: NATS keeps it out (Nats-Msg-Id)
        # again with no Nats-Msg-Id (a republish after the duplicate window): the ledger has it
        await nc.jetstream().publish(rm.subject(sent[0]), rm.wire(sent[0]))

        async def all_there() -> bool:
            return (
                sorted(dingtalk.numbers()) == [1, 2, 3]
                and sorted(wecom.numbers()) == [1, 2, 3]
                and len(webhook.calls) == 3
                and count(metrics, "cw_notifier_reminders_received") == 4
            )

        await eventually(all_there, within=30, what="every target has 3 reminders",
                         running=[task])  # fmt: skip
    first = dingtalk.accepted()[0].body
    assert first["msgtype"] == "markdown"
    assert first["at"] == {"atMobiles": ["13800000000", "13900000001"], "isAtAll": False}
    text = first["markdown"]["text"]  # type: ignore[index]
    assert text.startswith("#### 整改逾期 #1：连云区测试农贸市场")
    assert "@13800000000" in text
    assert wecom.texts()[0].startswith("#### 整改逾期 #1")
    assert webhook.keys() == [str(r.reminder_id) for r in sent]
    assert sorted(dingtalk.numbers()) == [1, 2, 3]
    assert [Reminder.model_validate_json(c.body) for c in webhook.calls] == sent
    for kind in ("dingtalk", "wecom", "webhook"):
        assert count(metrics, "cw_notifier_deliveries", target_kind=kind, outcome="delivered") == 3
    assert not dingtalk.throttled() and not wecom.throttled()


async def test_filters_by_district_and_kind(
    ready: Settings, nc: Client, tmp_path: Path, dingtalk: FakeRobot, wecom: FakeRobot
) -> None:
    settings = with_targets(
        ready,
        tmp_path / "notify.toml",
        dingtalk_target(dingtalk, districts=["320703"], kinds=["digest", "escalation"]),
        {"name": "all-overdue", "kind": "wecom", "url": wecom.url, "kinds": ["overdue"]},
    )
    async with notifier_in_process(settings) as task:
        await rm.publish(
            nc.jetstream(),
            [
                rm.reminder(1),  # overdue, 320703
                rm.reminder(2, kind="digest"),
                rm.reminder(3, kind="escalation", district="320705"),
                rm.reminder(4, district="320705"),
                rm.reminder(5, kind="escalation"),
            ],
        )

        async def routed() -> bool:
            return sorted(dingtalk.numbers()) == [2, 5] and sorted(wecom.numbers()) == [1, 4]

        await eventually(routed, within=30, what="filtered deliveries", running=[task])
    assert len(dingtalk.accepted()) == 2 and len(wecom.accepted()) == 2


async def _count(robot: FakeRobot, n: int) -> bool:
    return len(robot.accepted()) == n


async def test_a_burst_is_merged_and_never_exceeds_the_robots_limit(
    ready: Settings, nc: Client, tmp_path: Path, wecom: FakeRobot
) -> None:
    wecom.per_minute, wecom.window_s, wecom.throttle_s = 5, 2.0, 20.0
    settings = with_targets(
        ready,
        tmp_path / "notify.toml",
        {"name": "wecom", "kind": "wecom", "url": wecom.url, "per_minute": 5, "window": "2s"},
    )
    metrics = NotifierMetrics()
    async with notifier_in_process(settings, metrics) as task:
        await rm.publish(nc.jetstream(), [rm.reminder(n) for n in range(1, 201)])

        async def all_there() -> bool:
            return len(set(wecom.numbers())) == 200

        await eventually(all_there, within=60, what="200 reminders at the robot", running=[task])
    assert sorted(wecom.numbers()) == list(range(1, 201))  # each once
    assert not wecom.throttled()
    assert wecom.most_in_any_window() <= 5
    assert count(metrics, "cw_notifier_merged", target_kind="wecom") >= 1
    assert len(wecom.accepted()) < 200
    assert all(len(t.encode()) <= 4096 for t in wecom.texts())


async def test_the_limit_holds_across_a_restart(
    ready: Settings, nc: Client, tmp_path: Path, dingtalk: FakeRobot
) -> None:
    dingtalk.per_minute, dingtalk.window_s, dingtalk.throttle_s = 3, 4.0, 40.0
    settings = with_targets(
        ready, tmp_path / "notify.toml", dingtalk_target(dingtalk, per_minute=3, window="4s")
    )
    js = nc.jetstream()
    async with notifier_in_process(settings) as task:
        for n in (1, 2, 3):  # one at a time: each its own message, the budget used up
            await rm.publish(js, [rm.reminder(n)])
            await eventually(lambda n=n: _count(dingtalk, n), within=30,  # type: ignore[misc]
                             what=f"message {n}", running=[task])  # fmt: skip
    async with notifier_in_process(settings) as task:  # a fresh budget would send at once
        for n in (4, 5, 6):
            await rm.publish(js, [rm.reminder(n)])
        await eventually(lambda: _count_numbers(dingtalk, 6), within=60,
                         what="6 reminders", running=[task])  # fmt: skip
    assert not dingtalk.throttled()
    assert dingtalk.most_in_any_window() <= 3
    assert sorted(dingtalk.numbers()) == [1, 2, 3, 4, 5, 6]


async def _count_numbers(robot: FakeRobot, n: int) -> bool:
    return len(robot.numbers()) >= n


async def test_a_webhook_is_retried_after_retry_after_and_a_4xx_is_a_dead_letter(
    ready: Settings,
    nc: Client,
    tmp_path: Path,
    wecom: FakeRobot,
    webhook: FakeWebhook,
) -> None:
    sent = [rm.reminder(n) for n in (1, 2, 3)]
    key = {str(r.reminder_id): i + 1 for i, r in enumerate(sent)}
    script = {1: [429, 500, 200], 2: [400], 3: [200]}

    def answer(_call: int, k: str | None) -> int:
        statuses = script[key[k or ""]]
        return statuses.pop(0) if len(statuses) > 1 else statuses[0]

    webhook.answer, webhook.retry_after = answer, "1"
    settings = with_targets(
        ready,
        tmp_path / "notify.toml",
        {"name": "robot", "kind": "wecom", "url": wecom.url},
        {"name": "sms-gateway", "kind": "webhook", "url": webhook.url},
    )
    metrics = NotifierMetrics()
    async with notifier_in_process(settings, metrics) as task:
        await rm.publish(nc.jetstream(), sent)

        async def settled() -> bool:
            return len(webhook.calls) == 5 and len(await dead_letters(nc)) == 1

        await eventually(settled, within=60, what="webhook retried, one refused", running=[task])
    ids = [str(r.reminder_id) for r in sent]
    assert [c.key for c in webhook.calls] == [ids[0], ids[0], ids[0], ids[1], ids[2]]
    assert [c.status for c in webhook.calls] == [429, 500, 200, 400, 200]
    assert webhook.calls[1].at - webhook.calls[0].at >= 1.0  # Retry-After: 1
    assert sorted(wecom.numbers()) == [1, 2, 3]  # the webhook's retries resent nothing here
    (letter,) = await dead_letters(nc)
    assert letter.subject == "cw.dlq.notifier"
    assert letter.headers[TARGET] == "sms-gateway"
    assert letter.kind == "http_status"
    assert "HTTP 400" in letter.reason
    assert letter.original_subject == rm.subject(sent[1])
    assert Reminder.model_validate_json(letter.payload) == sent[1]
    assert TOKEN not in letter.reason
    assert count(metrics, "cw_notifier_deliveries", target_kind="webhook", outcome="retried") == 2
    assert count(metrics, "cw_notifier_deliveries", target_kind="webhook",
                 outcome="dead_lettered") == 1  # fmt: skip


async def test_a_robot_refusal_is_a_dead_letter_not_a_retry_storm(
    ready: Settings, nc: Client, tmp_path: Path, dingtalk: FakeRobot
) -> None:
    # A wrong secret: DingTalk answers 310000 (signature refused).
    dingtalk.secret = "SECsomething-else"
    settings = with_targets(ready, tmp_path / "notify.toml", dingtalk_target(dingtalk))
    async with notifier_in_process(settings) as task:
        await rm.publish(nc.jetstream(), [rm.reminder(1)])

        async def one_letter() -> bool:
            return len(await dead_letters(nc)) == 1

        await eventually(one_letter, within=30, what="a dead letter", running=[task])
        started = time.monotonic()
        await eventually(lambda: _quiet(started), within=5, what="a pause")
    assert [r.errcode for r in dingtalk.requests] == [310000]
    (letter,) = await dead_letters(nc)
    assert letter.kind == "robot_refused"
    assert "errcode 310000" in letter.reason
    assert TOKEN not in letter.reason and SECRET not in letter.reason


async def _quiet(started: float) -> bool:
    return time.monotonic() - started > 1.0


async def test_a_message_that_is_not_a_reminder_is_a_dead_letter(
    ready: Settings, nc: Client, tmp_path: Path, wecom: FakeRobot
) -> None:
    settings = with_targets(
        ready, tmp_path / "notify.toml", {"name": "w", "kind": "wecom", "url": wecom.url}
    )
    async with notifier_in_process(settings) as task:
        await nc.jetstream().publish("cw.reminders.320703.LY-FM-007.overdue", b'{"kind": 1}')
        await rm.publish(nc.jetstream(), [rm.reminder(1)])
        await eventually(lambda: _count(wecom, 1), within=30, what="the good one", running=[task])

        async def rejected() -> bool:
            return len(await dead_letters(nc)) == 1

        await eventually(rejected, within=30, what="the bad one", running=[task])
    (letter,) = await dead_letters(nc)
    assert (letter.stage, letter.kind) == ("notifier", "invalid_field")
    assert orjson.loads(letter.payload) == {"kind": 1}
