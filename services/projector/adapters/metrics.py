"""The projector's Prometheus metrics. No venue or issue id is ever a label."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.consumer.health import Health
from services.projector.domain.model import BatchOutcome


class ProjectorMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
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
        self.retries = Counter(
            "cw_projector_retries",
            "Batches retried after a transient fault, by the stage that failed.",
            ["stage"],
            registry=r,
        )
        self.consumer_restarts = Counter(
            "cw_projector_consumer_restarts",
            "Times the consumer was recreated at the checkpoint, by reason: gap (a delivery "
            "lost in transit), reconnect, connection_closed, consumer_missing (deleted), "
            "writer_regained (the write lock was taken again).",
            ["reason"],
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
        self.checkpoint = Gauge(
            "cw_projector_checkpoint_seq",
            "Last CW_EVENTS sequence committed to the read model.",
            registry=r,
        )
        self.lag = Gauge(
            "cw_projector_lag_events",
            "Events in CW_EVENTS not yet committed by the projector.",
            registry=r,
        )
        self.lag_seconds = Gauge(
            "cw_projector_lag_seconds",
            "Age of the oldest message of CW_EVENTS not yet committed (from the stream's own "
            "timestamps); 0 when caught up.",
            registry=r,
        )
        self.last_progress = Gauge(
            "cw_projector_last_progress_timestamp_seconds",
            "When the checkpoint last moved, or the projector last had nothing to do (Unix time).",
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

    def retried(self, stage: str) -> None:
        self.retries.labels(stage).inc()

    def dead_lettered(self, kind: str) -> None:
        self.dead_letters.labels(kind).inc()

    def consumer_restarted(self, reason: str) -> None:
        self.consumer_restarts.labels(reason).inc()

    def observed(self, health: Health) -> None:
        """What the health watcher saw, as gauges."""
        if health.lag_events is not None:
            self.lag.set(health.lag_events)
        if health.lag_seconds is not None:
            self.lag_seconds.set(health.lag_seconds)
        if health.last_progress_at is not None:
            self.last_progress.set(health.last_progress_at)
