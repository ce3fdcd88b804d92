"""``cw run notifier`` as a process: a bad notify file or a taken metrics port in one line, and
a ``kill -9`` in the middle of a burst that loses nothing and doubles nothing but the robot
message in flight at the kill."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client

from services.devstack.system import free_port
from tests.support import reminder_messages as rm
from tests.support.notifier import notify_file
from tests.support.processes import ProjectorProcess, cw, cw_env
from tests.support.robots import FakeRobot, FakeWebhook
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e

SECRET = "SECe2e0123456789abcdef0123456789"
BURST = 300


def test_a_bad_notify_file_is_one_line_naming_the_field(
    nats_url: str, database_url: str, tmp_path: Path
) -> None:
    path = notify_file(
        tmp_path / "notify.toml",
        [{"name": "robot", "kind": "wecom", "url": "http://127.0.0.1:9/x", "per_minute": 0}],
    )
    done = cw(cw_env(nats_url, database_url, notify_file=str(path)), "run", "notifier")
    assert done.returncode == 78, done.stderr
    errors = [line for line in done.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1, done.stderr
    assert "targets[0] (robot).per_minute: expected a whole number from 1 to 10000" in errors[0]
    assert "Traceback" not in done.stderr
    env = {k: v for k, v in cw_env(nats_url, database_url).items() if k != "CW_NOTIFY_FILE"}
    unset = cw(env, "run", "notifier")
    assert unset.returncode == 78
    assert "CW_NOTIFY_FILE is not set" in unset.stderr


def test_a_taken_metrics_port_names_cw_notifier_metrics_port(
    nats_url: str, database_url: str, tmp_path: Path
) -> None:
    path = notify_file(
        tmp_path / "notify.toml",
        [{"name": "robot", "kind": "wecom", "url": "http://127.0.0.1:9/x"}],
    )
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = cw_env(nats_url, database_url, notify_file=str(path),
                     notifier_metrics_port=str(port))  # fmt: skip
        done = cw(env, "run", "notifier")
    assert done.returncode == 2, done.stderr
    assert "set CW_NOTIFIER_METRICS_PORT to a free port" in done.stderr


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[Client]:
    conn = await nats.connect(nats_url)
    yield conn
    await conn.close()


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[FakeRobot, FakeRobot, FakeWebhook]]:
    # Two messages in a two-second window: a burst takes several windows, so the kill lands
    # in its middle.
    dingtalk = FakeRobot("dingtalk", secret=SECRET, per_minute=2, window_s=2.0, throttle_s=20.0)
    wecom = FakeRobot("wecom", per_minute=2, window_s=2.0, throttle_s=2.0)
    webhook = FakeWebhook()
    for fake in (dingtalk, wecom, webhook):
        await fake.start()
    yield dingtalk, wecom, webhook
    for fake in (dingtalk, wecom, webhook):
        await fake.stop()


async def test_kill_9_during_a_burst_loses_nothing_and_doubles_only_the_message_in_flight(
    nats_url: str,
    database_url: str,
    nc: Client,
    tmp_path: Path,
    fakes: tuple[FakeRobot, FakeRobot, FakeWebhook],
) -> None:
    dingtalk, wecom, webhook = fakes
    port = free_port()
    path = notify_file(
        tmp_path / "notify.toml",
        [
            {"name": "dingtalk", "kind": "dingtalk", "url": dingtalk.url,
             "secret_env": "CW_E2E_DINGTALK_SECRET", "per_minute": 2, "window": "2s"},
            {"name": "wecom", "kind": "wecom", "url": wecom.url, "per_minute": 2,
             "window": "2s"},
            {"name": "sms-gateway", "kind": "webhook", "url": webhook.url},
        ],
    )  # fmt: skip
    env = {
        **cw_env(nats_url, database_url, notify_file=str(path), notifier_metrics_port=str(port)),
        "CW_E2E_DINGTALK_SECRET": SECRET,
    }
    assert cw(env, "init").returncode == 0
    notifier = ProjectorProcess(env, tmp_path / "notifier.log", service="notifier")
    sent = [rm.reminder(n) for n in range(1, BURST + 1)]
    try:
        notifier.start()

        async def healthy() -> bool:
            # /healthz beside /metrics on the notifier's own port: the intake is the writer.
            try:
                body = await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/healthz")
            except OSError:
                return False
            return bool(json.loads(body)["status"] == "ok")

        await eventually(healthy, within=60, what="the notifier's /healthz says ok")
        await rm.publish(nc.jetstream(), sent)

        async def under_way() -> bool:
            return (
                len(dingtalk.accepted()) >= 1
                and len(wecom.accepted()) >= 2
                and len(webhook.calls) >= 3
            )

        def state() -> str:
            codes = Counter(r.errcode for r in dingtalk.requests + wecom.requests)
            return f"{codes}, webhook {len(webhook.calls)} calls\n{notifier.tail()}"

        await eventually(under_way, within=60, what=lambda: "deliveries under way: " + state())
        notifier.kill()
        before = {
            "dingtalk": dingtalk.messages_numbers(),
            "wecom": wecom.messages_numbers(),
        }
        calls_before = len(webhook.calls)
        notifier.start()

        async def all_delivered() -> bool:
            return (
                set(dingtalk.numbers()) == set(range(1, BURST + 1))
                and set(wecom.numbers()) == set(range(1, BURST + 1))
                and {c.key for c in webhook.calls if c.status == 200}
                == {str(r.reminder_id) for r in sent}
            )

        await eventually(all_delivered, within=120, what=lambda: "all delivered: " + state())
        assert notifier.stop() == 0
    finally:
        notifier.ensure_gone()
    for robot, name in ((dingtalk, "dingtalk"), (wecom, "wecom")):
        times = Counter(robot.numbers())
        doubled = {n for n, k in times.items() if k > 1}
        assert max(times.values()) <= 2
        # A robot has no idempotency key: only the message it accepted while the notifier was
        # being killed (never recorded as sent) may come twice.
        assert not doubled or (before[name] and doubled <= set(before[name][-1])), (name, doubled)
        assert not robot.throttled(), name
        assert robot.most_in_any_window() <= 2, name
    keys = Counter(c.key for c in webhook.calls)
    again = [k for k, n in keys.items() if n > 1]
    assert len(again) <= 1  # the webhook's request in flight, with the same Idempotency-Key
    if again:
        # The request in flight at the kill: the last one the server had handled, or one still
        # in its socket buffer, which it handles once this test's loop runs again (the kill
        # above blocks the loop), so just after.
        around_the_kill = {c.key for c in webhook.calls[calls_before - 1 : calls_before + 1]}
        assert again[0] in around_the_kill
    assert os.environ.get("CW_E2E_DINGTALK_SECRET") is None


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response:
        body: bytes = response.read()
    return body
