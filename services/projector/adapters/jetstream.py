"""The projector reads ``CW_EVENTS`` through the consumer kit's JetStream adapter."""

from services.consumer.jetstream import (
    DeadLetterPublisher,
    EventSource,
    NatsConnection,
    ack_meta,
    stream_last_seq,
    stream_seq,
)

__all__ = [
    "DeadLetterPublisher",
    "EventSource",
    "NatsConnection",
    "ack_meta",
    "stream_last_seq",
    "stream_seq",
]
