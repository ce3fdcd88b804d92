"""The notifier's Prometheus metrics. Labels are the target's kind, an outcome or a reason:
never a venue, an issue, a person, a target's URL or its name."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from services.consumer.metrics import ConsumerMetrics
from services.notifier.domain.model import Outcome, Recorded


class NotifierMetrics(ConsumerMetrics):
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        super().__init__("cw_notifier", "CW_REMINDERS", registry)
        r = self.registry
        self.deliveries = Counter(
            "cw_notifier_deliveries",
            "(reminder, target) deliveries by what became of them in one attempt: delivered, "
            "retried (a fault that can pass), throttled (the robot said too fast), "
            "dead_lettered (refused for good).",
            ["target_kind", "outcome"],
            registry=r,
        )
        self.merged_messages = Counter(
            "cw_notifier_merged",
            "Messages that carried several reminders as one markdown list (a burst beyond the "
            "robot's budget).",
            ["target_kind"],
            registry=r,
        )
        self.received = Counter(
            "cw_notifier_reminders_received",
            "Reminders of CW_REMINDERS whose deliveries were recorded.",
            registry=r,
        )
        self.rejected = Counter(
            "cw_notifier_rejected",
            "Messages of CW_REMINDERS that are not reminders, sent to cw.dlq.notifier.",
            ["reason"],
            registry=r,
        )
        self.alerts = Counter(
            "cw_notifier_alerts",
            "Alertmanager's alerts (POST /alerts) sent to targets with alerts = true, by what "
            "became of them in one attempt (as cw_notifier_deliveries).",
            ["target_kind", "outcome"],
            registry=r,
        )
        self.waiting = Gauge(
            "cw_notifier_waiting_deliveries",
            "(reminder, target) deliveries not yet done, by the target's kind.",
            ["target_kind"],
            registry=r,
        )

    # DeliveryObserver
    def delivered(self, target_kind: str, outcome: Outcome, count: int) -> None:
        self.deliveries.labels(target_kind, outcome).inc(count)

    def merged(self, target_kind: str) -> None:
        self.merged_messages.labels(target_kind).inc()

    def alerted(self, target_kind: str, outcome: Outcome) -> None:
        self.alerts.labels(target_kind, outcome).inc()

    # the consumer kit's Observer
    def batch_done(self, outcome: Recorded, size: int, seconds: float) -> None:
        self.received.inc(outcome.reminders)
        self.checkpoint.set(outcome.checkpoint)

    def dead_lettered(self, kind: str) -> None:
        self.rejected.labels(kind).inc()
