"""Alertmanager's webhook read into alerts, what a robot is sent for one, and the notify file's
``alerts`` and ``reminders`` keys."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from services.notifier.adapters.wecom import FORMAT as WECOM
from services.notifier.domain.alerts import AlertsInvalid, alert_json, alert_message, parse_alerts
from services.notifier.domain.targets import NotifyFileInvalid, parse_targets
from tests.support.reminder_messages import reminder

pytestmark = pytest.mark.unit

ZONE = ZoneInfo("Asia/Shanghai")
POST = {
    "version": "4",
    "status": "firing",
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "CwStreamReplaced", "severity": "page",
                       "job": "cw-projector", "stream": "CW_EVENTS"},
            "annotations": {"summary": "the projector stopped", "summary_zh": "投影已暂停"},
            "startsAt": "2026-12-08T02:00:00.123456789Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "fingerprint": "abc",
        },
        {
            "status": "resolved",
            "labels": {"alertname": "CwServiceDown", "severity": "ticket"},
            "annotations": {"summary": "down"},
            "startsAt": "2026-12-08T01:00:00Z",
            "endsAt": "2026-12-08T01:05:00Z",
        },
    ],
}  # fmt: skip


def test_alertmanagers_post_reads_as_alerts() -> None:
    alerts, left = parse_alerts(json.dumps(POST).encode())
    assert left == 0
    first, second = alerts
    assert (first.name, first.status, first.severity) == ("CwStreamReplaced", "firing", "page")
    assert first.summary_zh == "投影已暂停" and first.ends_at is None
    assert first.at is not None and first.at.astimezone(UTC).hour == 2
    assert second.summary_zh == "down"  # no Chinese summary: the English one
    assert second.at == datetime(2026, 12, 8, 1, 5, tzinfo=UTC)
    assert first.key != second.key and len(first.key) == 32


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"nope", "not JSON"),
        (b"{}", "expected Alertmanager's webhook"),
        (b'{"alerts": [1]}', r"alerts\[0\]: expected an object"),
        (b'{"alerts": [{"status": "odd"}]}', "neither firing nor resolved"),
    ],
)
def test_a_post_that_is_not_alertmanagers_is_refused(body: bytes, why: str) -> None:
    with pytest.raises(AlertsInvalid, match=why):
        parse_alerts(body)


def test_a_robot_is_sent_the_chinese_summary_the_state_and_the_local_time() -> None:
    alerts, _ = parse_alerts(json.dumps(POST).encode())
    firing = alert_message(alerts[0], ZONE, WECOM)
    assert firing.text.splitlines()[0] == "#### 【告警】投影已暂停"
    assert "开始时间：2026-12-08 10:00 +08:00" in firing.text
    assert "告警：CwStreamReplaced（job=cw-projector, stream=CW_EVENTS）" in firing.text
    assert firing.phones == () and firing.reminder_ids == ()
    resolved = alert_message(alerts[1], ZONE, WECOM)
    assert resolved.text.startswith("#### 【已恢复】down")
    assert "恢复时间：2026-12-08 09:05 +08:00" in resolved.text
    long = dataclasses.replace(alerts[0], summary_zh="很长" * 3000)
    assert WECOM.fits(alert_message(long, ZONE, WECOM))
    sent = json.loads(alert_json(alerts[0], ZONE))
    assert sent["starts_at"].startswith("2026-12-08T10:00:00") and sent["status"] == "firing"


def test_targets_take_alerts_when_marked_and_may_leave_reminders_out() -> None:
    url = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k"
    ops, group = parse_targets(
        {"targets": [
            {"name": "ops", "kind": "wecom", "url": url, "alerts": True, "reminders": False},
            {"name": "group", "kind": "wecom", "url": url},
        ]},
        {},
    )  # fmt: skip
    assert (ops.alerts, ops.reminders, group.alerts, group.reminders) == (True, False, False, True)
    assert not ops.wants(reminder(1)) and group.wants(reminder(1))
    with pytest.raises(NotifyFileInvalid, match=r"targets\[0\] \(x\)\.alerts: expected true"):
        parse_targets({"targets": [{"name": "x", "kind": "wecom", "url": url, "alerts": 1}]}, {})
    with pytest.raises(NotifyFileInvalid, match="would take nothing"):
        parse_targets(
            {"targets": [{"name": "x", "kind": "wecom", "url": url, "reminders": False}]}, {}
        )
