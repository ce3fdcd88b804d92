"""The projector's Prometheus metrics. No venue or issue id is ever a label."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.consumer.metrics import ConsumerMetrics
from services.projector.domain.model import BatchOutcome


class ProjectorMetrics(ConsumerMetrics):
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        super().__init__("cw_projector", "CW_EVENTS", registry)
        r = self.registry
        self.events_applied = Counter(
            "cw_projector_events_applied",
            "Events whose effects the projector committed, by event type.",
            ["event_type"],
            registry=r,
        )
        self.duplicates = Counter(
            "cw_projector_duplicates",
            "Messages that changed nothing: an event id already applied, or a redelivery at or "
            "below the checkpoint.",
            ["kind"],
            registry=r,
        )
        self.dead_letters = Counter(
            "cw_projector_dead_letters",
            "Messages sent to cw.dlq.projector, by reason.",
            ["reason"],
            registry=r,
        )
        self.waiting_events = Counter(
            "cw_projector_waiting_events",
            "Issue events kept until their IssueFound arrives (deferred) and applied later "
            "(resumed).",
            ["state"],
            registry=r,
        )
        self.batch_size = Histogram(
            "cw_projector_batch_size",
            "Messages per batch.",
            buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000, 10000),
            registry=r,
        )
        self.batch_seconds = Histogram(
            "cw_projector_batch_seconds",
            "Time from taking a batch to its commit and ack.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.dead_letters_kept = Gauge(
            "cw_dead_letters",
            "Dead letters kept in CW_DEAD_LETTERS, by the stage that rejected them (from the "
            "stream; served by the projector that holds the write lock).",
            ["stage"],
            registry=r,
        )
        self.unaccounted = Gauge(
            "cw_projector_unaccounted_events",
            "Messages of CW_EVENTS in the last audit window that are neither archived nor have a "
            "recorded outcome (duplicate, dead letter still kept or acted on): lost events.",
            registry=r,
        )
        self.audit_checked_through = Gauge(
            "cw_projector_audit_checked_through_seq",
            "The checkpoint the last periodic audit checked up to.",
            registry=r,
        )
        self.audits = Counter(
            "cw_projector_audits",
            "Periodic audits, by result: clean, unaccounted (found some), failed (could not run).",
            ["result"],
            registry=r,
        )

    # -- the projector's Observer port ----------------------------------------------------------

    def batch_done(self, outcome: BatchOutcome, size: int, seconds: float) -> None:
        for event_type, n in outcome.changes.applied.items():
            self.events_applied.labels(event_type).inc(n)
        if outcome.duplicates:
            self.duplicates.labels("event_id").inc(outcome.duplicates)
        if outcome.already_done:
            self.duplicates.labels("redelivery").inc(outcome.already_done)
        if outcome.changes.deferred:
            self.waiting_events.labels("deferred").inc(outcome.changes.deferred)
        if outcome.changes.resumed:
            self.waiting_events.labels("resumed").inc(outcome.changes.resumed)
        self.batch_size.observe(size)
        self.batch_seconds.observe(seconds)
        self.checkpoint.set(outcome.checkpoint)

    def dead_lettered(self, kind: str) -> None:
        self.dead_letters.labels(kind).inc()
