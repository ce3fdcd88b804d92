"""The reminders service's Prometheus metrics. No venue, issue or person is ever a label."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from contracts.reminders import REMINDER_KINDS
from services.consumer.metrics import ConsumerMetrics
from services.reminders.domain.model import BatchReport, OutboxEntry, Tally

DELAY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.0, 5.0, 15.0, 60.0, 300.0)


class ReminderMetrics(ConsumerMetrics):
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        super().__init__("cw_reminders", "CW_EVENTS", registry)
        r = self.registry
        self.scheduled = Counter("cw_reminders_scheduled", "Timers scheduled.", ["kind"],
                                 registry=r)  # fmt: skip
        self.sent = Counter("cw_reminders_sent", "Reminders published to CW_REMINDERS.",
                            ["kind"], registry=r)  # fmt: skip
        self.skipped = Counter(
            "cw_reminders_skipped",
            "Timers recorded as skipped, never sent (reason: passed, stale, nothing_open, "
            "outbox_expired).",
            ["kind", "reason"],
            registry=r,
        )
        self.cancelled = Counter("cw_reminders_cancelled", "Pending timers cancelled.", ["kind"],
                                 registry=r)  # fmt: skip
        self.pending = Gauge("cw_reminders_pending", "Pending timers.", ["kind"], registry=r)
        self.delay = Histogram(
            "cw_reminders_delay_seconds",
            "Publish time minus fire time of each reminder sent.",
            buckets=DELAY_BUCKETS,
            registry=r,
        )
        self.unpublished = Gauge(
            "cw_reminders_unpublished",
            "Reminders recorded as sent in the outbox and not yet confirmed by CW_REMINDERS "
            "(normally 0 within a second: above 0 for minutes, NATS refuses them).",
            registry=r,
        )
        for kind in REMINDER_KINDS:
            self.pending.labels(kind).set(0)

    def tally(self, tally: Tally) -> None:
        for kind, n in tally.scheduled.items():
            self.scheduled.labels(kind).inc(n)
        for (kind, reason), n in tally.skipped.items():
            self.skipped.labels(kind, reason).inc(n)
        for kind, n in tally.cancelled.items():
            self.cancelled.labels(kind).inc(n)

    def published(self, entries: Sequence[OutboxEntry], at: datetime) -> None:
        for e in entries:
            self.sent.labels(e.kind).inc()
            self.delay.observe(max(0.0, (at - e.fire_at).total_seconds()))

    def expired(self, entries: Sequence[OutboxEntry]) -> None:
        for e in entries:
            self.skipped.labels(e.kind, "outbox_expired").inc()

    def pending_now(self, counts: Mapping[str, int]) -> None:
        for kind in REMINDER_KINDS:
            self.pending.labels(kind).set(counts.get(kind, 0))

    # -- the consumer loop's Observer ---------------------------------------------------------

    def batch_done(self, outcome: BatchReport, size: int, seconds: float) -> None:
        self.tally(outcome.tally)
        self.checkpoint.set(outcome.checkpoint)

    def dead_lettered(self, kind: str) -> None:
        """Dead letters of CW_EVENTS are the projector's: the reminders service writes none."""
