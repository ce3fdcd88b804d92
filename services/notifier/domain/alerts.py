"""Alerts that reach people: Alertmanager's webhook (``POST /alerts`` on the notifier's metrics
port) read into alerts, and what a robot or a webhook is sent for each. Pure.

Alertmanager posts a group of alerts (its webhook format, version 4: ``status``, ``alerts``
with ``status``, ``labels``, ``annotations``, ``startsAt``, ``endsAt``, ``fingerprint``). Every
alert of ours says what happened in Chinese (``summary_zh``) and names no venue, issue or person
(``deploy/prometheus/rules/alerts.yml``), so the text is forwarded as it is.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from services.common.localtime import shown
from services.notifier.domain.messages import ELLIPSIS, RobotFormat, RobotMessage

Status = Literal["firing", "resolved"]
MAX_ALERTS = 200
"""Most alerts taken from one post (Alertmanager's ``max_alerts`` is 0, unlimited, by default):
the rest of a flood is counted, not sent."""
SEVERITY_ZH = {"page": "紧急", "ticket": "一般"}


class AlertsInvalid(ValueError):
    """The body is not Alertmanager's webhook; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class Alert:
    name: str
    status: Status
    severity: str
    summary_zh: str
    summary: str
    starts_at: datetime | None
    ends_at: datetime | None
    labels: tuple[tuple[str, str], ...]
    fingerprint: str

    @property
    def at(self) -> datetime | None:
        """When it began firing, or when it was resolved."""
        return self.ends_at if self.status == "resolved" else self.starts_at

    @property
    def key(self) -> str:
        """The same alert, in the same state, from the same start: a webhook's
        ``Idempotency-Key`` (Alertmanager repeats a firing alert every ``repeat_interval``)."""
        text = f"{self.fingerprint}|{self.status}|{self.starts_at}|{self.ends_at}"
        return hashlib.sha256(text.encode()).hexdigest()[:32]


def _moment(value: object) -> datetime | None:
    if not isinstance(value, str) or value.startswith("0001-01-01"):
        return None  # Alertmanager's zero time: not resolved yet
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def parse_alerts(body: bytes) -> tuple[list[Alert], int]:
    """The alerts of one webhook post (at most ``MAX_ALERTS``) and how many more were left."""
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise AlertsInvalid(f"not JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("alerts"), list):
        raise AlertsInvalid("expected Alertmanager's webhook: an object with alerts: [...]")
    out = []
    for i, raw in enumerate(data["alerts"]):
        if not isinstance(raw, dict):
            raise AlertsInvalid(f"alerts[{i}]: expected an object")
        labels = _texts(raw.get("labels"))
        notes = _texts(raw.get("annotations"))
        status = raw.get("status", data.get("status"))
        if status not in ("firing", "resolved"):
            raise AlertsInvalid(f"alerts[{i}].status: {status!r} is neither firing nor resolved")
        name = labels.get("alertname", "")
        out.append(
            Alert(
                name=name or "(unnamed)",
                status=status,
                severity=labels.get("severity", ""),
                summary_zh=notes.get("summary_zh") or notes.get("summary") or name,
                summary=notes.get("summary", ""),
                starts_at=_moment(raw.get("startsAt")),
                ends_at=_moment(raw.get("endsAt")),
                labels=tuple(sorted(labels.items())),
                fingerprint=str(raw.get("fingerprint") or sorted(labels.items())),
            )
        )
    return out[:MAX_ALERTS], max(0, len(out) - MAX_ALERTS)


def _texts(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items()}


def _lines(alert: Alert, zone: ZoneInfo) -> list[str]:
    when = shown(alert.at, zone, offset=True) if alert.at else "-"
    severity = SEVERITY_ZH.get(alert.severity, alert.severity or "-")
    where = ", ".join(f"{k}={v}" for k, v in alert.labels if k not in ("alertname", "severity"))
    lines = [
        f"- 级别：{severity}（{alert.severity or '-'}）",
        f"- {'恢复' if alert.status == 'resolved' else '开始'}时间：{when}",
        f"- 告警：{alert.name}" + (f"（{where}）" if where else ""),
    ]
    return lines


def title_of(alert: Alert) -> str:
    return f"【{'已恢复' if alert.status == 'resolved' else '告警'}】{alert.summary_zh}"


def alert_message(alert: Alert, zone: ZoneInfo, fmt: RobotFormat) -> RobotMessage:
    """One alert as a robot's markdown message: its Chinese summary, firing or resolved, and
    the local time; cut with an ellipsis if the robot would not take it whole."""
    title = title_of(alert)
    text = "\n".join([f"#### {title}", "", *_lines(alert, zone)])
    message = RobotMessage(f"创卫告警 {alert.name}", text, (), ())
    while not fmt.fits(message) and len(text) > 1:
        text = text[: len(text) * 3 // 4] + ELLIPSIS
        message = RobotMessage(message.title, text, (), ())
    return message


def alert_json(alert: Alert, zone: ZoneInfo) -> bytes:
    """One alert for a webhook target."""
    body: dict[str, Any] = {
        "type": "alert",
        "status": alert.status,
        "alertname": alert.name,
        "severity": alert.severity,
        "summary_zh": alert.summary_zh,
        "summary": alert.summary,
        "starts_at": alert.starts_at.astimezone(zone).isoformat() if alert.starts_at else None,
        "ends_at": alert.ends_at.astimezone(zone).isoformat() if alert.ends_at else None,
        "labels": dict(alert.labels),
    }
    return json.dumps(body, ensure_ascii=False).encode()
