"""What every consumer of a stream reports, under its service's prefix (``cw_projector_``,
``cw_reminders_``, ``cw_notifier_``): retries, consumer restarts, the checkpoint, and the backlog
the health watcher sees. A service's metrics class inherits it and adds its own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from services.consumer.health import Health


class ConsumerMetrics:
    def __init__(self, prefix: str, stream: str, registry: CollectorRegistry | None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.retries = Counter(
            f"{prefix}_retries",
            "Retries after a transient fault (PostgreSQL, NATS), by the stage that failed.",
            ["stage"],
            registry=r,
        )
        self.consumer_restarts = Counter(
            f"{prefix}_consumer_restarts",
            f"Times the {stream} consumer was recreated at the checkpoint, by reason: gap (a "
            "delivery lost in transit), reconnect, connection_closed, consumer_missing "
            "(deleted), writer_regained (the write lock was taken again).",
            ["reason"],
            registry=r,
        )
        self.checkpoint = Gauge(
            f"{prefix}_checkpoint_seq", f"Last {stream} sequence committed.", registry=r
        )
        self.lag = Gauge(
            f"{prefix}_lag_events", f"{stream} messages not yet committed.", registry=r
        )
        self.lag_seconds = Gauge(
            f"{prefix}_lag_seconds",
            f"Age of the oldest {stream} message not yet committed (from the stream's own "
            "timestamps); 0 when caught up.",
            registry=r,
        )
        self.stream_replaced = Gauge(
            "cw_stream_replaced",
            f"1 while {stream} is not the stream this consumer followed (another stream of that "
            "name: recreated, another server's, restored from an older backup); the consumer "
            "takes nothing from it. Else 0.",
            ["stream"],
            registry=r,
        )
        self.stream_replaced.labels(stream).set(0)
        self._stream = stream
        self.last_progress = Gauge(
            f"{prefix}_last_progress_timestamp_seconds",
            "When the checkpoint last moved, or the consumer last had nothing to do (Unix time).",
            registry=r,
        )

    # the consumer kit's Observer (batch_done and dead_lettered are each service's own)
    def retried(self, stage: str) -> None:
        self.retries.labels(stage).inc()

    def consumer_restarted(self, reason: str) -> None:
        self.consumer_restarts.labels(reason).inc()

    def observed(self, health: Health) -> None:
        """What the health watcher saw (the backlog behind /healthz), as gauges."""
        if health.lag_events is not None:
            self.lag.set(health.lag_events)
        if health.lag_seconds is not None:
            self.lag_seconds.set(health.lag_seconds)
        self.stream_replaced.labels(self._stream).set(1 if health.replaced else 0)
        if health.last_progress_at is not None:
            self.last_progress.set(health.last_progress_at)
