"""Alerts that reach people: Alertmanager's webhook posted to the notifier's ``/alerts`` (on
its metrics port, as ``cw run notifier`` serves it) reaches a fake robot marked
``alerts = true``, firing and resolved, in local time, within the robot's budget; a target
without ``alerts`` gets none."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from services import registry
from services.common.entrypoints import initialise
from services.common.settings import Settings
from services.devstack.system import free_port
from services.notifier.entrypoints.cli import NOTIFIER, serve
from tests.support.notifier import notify_file
from tests.support.robots import FakeRobot, FakeWebhook
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


def alertmanager_post(*alerts: tuple[str, str, str]) -> bytes:
    """Alertmanager's webhook (version 4) for (alertname, status, summary_zh)."""
    return json.dumps(
        {
            "version": "4",
            "status": alerts[0][1],
            "receiver": "operators-page",
            "groupLabels": {"alertname": alerts[0][0]},
            "alerts": [
                {
                    "status": status,
                    "labels": {"alertname": name, "severity": "page", "job": "cw-projector"},
                    "annotations": {"summary": f"{name} in English", "summary_zh": summary},
                    "startsAt": "2026-12-08T02:00:00.000Z",
                    "endsAt": "2026-12-08T02:30:00Z" if status == "resolved"
                    else "0001-01-01T00:00:00Z",
                    "fingerprint": f"fp-{name}",
                }
                for name, status, summary in alerts
            ],
        }
    ).encode()  # fmt: skip


@contextlib.asynccontextmanager
async def notifier(settings: Settings) -> AsyncIterator[str]:
    """``cw run notifier``'s ``serve`` in this process; yields its ``/alerts`` URL once the
    notifier sends."""
    port = free_port()
    own = registry.service_settings(
        NOTIFIER, settings.model_copy(update={"notifier_metrics_port": port})
    )
    assert own.metrics_port == port
    stop = asyncio.Event()
    task = asyncio.create_task(serve(own, stop))
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:

            async def writing() -> bool:
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"{url}/healthz") as answer:
                        return bool((await answer.json()).get("status") == "ok")
                return False

            await eventually(writing, within=30, what="the notifier sends", running=[task])
        yield f"{url}/alerts"
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def post(url: str, body: bytes) -> tuple[int, dict[str, object]]:
    async with aiohttp.ClientSession() as http, http.post(url, data=body) as answer:
        return answer.status, await answer.json()


async def test_an_alert_reaches_the_robot_marked_for_alerts_within_its_budget(
    settings: Settings, tmp_path: Path
) -> None:
    await initialise(settings)
    robot = FakeRobot("wecom", per_minute=2, window_s=2.0, throttle_s=2.0)
    hook = FakeWebhook()
    await robot.start()
    await hook.start()
    targets: list[dict[str, object]] = [
        {"name": "ops-wecom", "kind": "wecom", "url": robot.url, "alerts": True,
         "reminders": False, "per_minute": 2, "window": "2s"},
        {"name": "sms-gateway", "kind": "webhook", "url": hook.url},
    ]  # fmt: skip
    settings = settings.model_copy(
        update={"notify_file": notify_file(tmp_path / "notify.toml", targets)}
    )
    try:
        async with notifier(settings) as alerts:
            code, said = await post(alerts, b"{not json")
            assert code == 400 and "not JSON" in str(said["error"])
            code, said = await post(
                alerts,
                alertmanager_post(
                    ("CwConsumerStalled", "firing", "cw-projector 有积压事件且 5 分钟无进展"),
                    ("CwServiceDown", "firing", "cw-reminders 无法采集指标"),
                ),
            )
            assert (code, said) == (200, {"alerts": 2, "targets": ["ops-wecom"]})
            code, _ = await post(
                alerts,
                alertmanager_post(("CwConsumerStalled", "resolved", "cw-projector 有积压事件")),
            )
            assert code == 200

            async def three() -> bool:
                return len(robot.accepted()) == 3

            await eventually(three, within=30, what="three alerts at the robot")
    finally:
        await robot.stop()
        await hook.stop()

    contents = [str(r.body["markdown"]["content"]) for r in robot.requests]  # type: ignore[index]
    assert contents[0].startswith("#### 【告警】cw-projector 有积压事件且 5 分钟无进展")
    assert "开始时间：2026-12-08 10:00 +08:00" in contents[0]
    assert "级别：紧急（page）" in contents[0]
    assert contents[1].startswith("#### 【告警】cw-reminders 无法采集指标")
    assert contents[2].startswith("#### 【已恢复】cw-projector 有积压事件")
    assert "恢复时间：2026-12-08 10:30 +08:00" in contents[2]
    # Within the robot's budget (2 in any 2 s): the robot never said "too fast".
    assert all(r.accepted for r in robot.requests)
    assert robot.requests[2].at - robot.requests[0].at >= 2.0
    assert hook.calls == []
    db = await asyncpg.connect(settings.database_url)
    try:
        attempts = await db.fetchval(
            "SELECT count(*) FROM cw_notifier.attempts WHERE target = 'ops-wecom'"
        )
    finally:
        await db.close()
    assert attempts == 3  # counted in the same ledger as the reminders' messages
