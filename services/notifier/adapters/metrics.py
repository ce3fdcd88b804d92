"""The notifier's Prometheus metrics. Labels are the target's kind, an outcome or a reason:
never a venue, an issue, a person, a target's URL or its name."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from services.consumer.health import Health
from services.notifier.domain.model import Outcome, Recorded


class NotifierMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
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
        self.retries = Counter(
            "cw_notifier_retries",
            "Retries after a transient fault of PostgreSQL or NATS, by stage.",
            ["stage"],
            registry=r,
        )
        self.consumer_restarts = Counter(
            "cw_notifier_consumer_restarts",
            "Times the CW_REMINDERS consumer was recreated at the checkpoint, by reason.",
            ["reason"],
            registry=r,
        )
        self.waiting = Gauge(
            "cw_notifier_waiting_deliveries",
            "(reminder, target) deliveries not yet done, by the target's kind.",
            ["target_kind"],
            registry=r,
        )
        self.checkpoint = Gauge(
            "cw_notifier_checkpoint_seq",
            "Last CW_REMINDERS sequence whose deliveries are recorded.",
            registry=r,
        )
        self.lag = Gauge(
            "cw_notifier_lag_events",
            "CW_REMINDERS messages whose deliveries are not yet recorded.",
            registry=r,
        )
        self.lag_seconds = Gauge(
            "cw_notifier_lag_seconds",
            "Age of the oldest CW_REMINDERS message whose deliveries are not yet recorded.",
            registry=r,
        )

    # DeliveryObserver
    def delivered(self, target_kind: str, outcome: Outcome, count: int) -> None:
        self.deliveries.labels(target_kind, outcome).inc(count)

    def merged(self, target_kind: str) -> None:
        self.merged_messages.labels(target_kind).inc()

    # the consumer kit's Observer
    def batch_done(self, outcome: Recorded, size: int, seconds: float) -> None:
        self.received.inc(outcome.reminders)
        self.checkpoint.set(outcome.checkpoint)

    def retried(self, stage: str) -> None:
        self.retries.labels(stage).inc()

    def dead_lettered(self, kind: str) -> None:
        self.rejected.labels(kind).inc()

    def consumer_restarted(self, reason: str) -> None:
        self.consumer_restarts.labels(reason).inc()

    def observed(self, health: Health) -> None:
        """What the health watcher saw (the backlog behind /healthz), as gauges."""
        if health.lag_events is not None:
            self.lag.set(health.lag_events)
        if health.lag_seconds is not None:
            self.lag_seconds.set(health.lag_seconds)
