"""``cw publish``'s composition root: the connection and the sink its use case writes to."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from services.intake.adapters.jetstream import (
    AsyncPublisher,
    JetStreamIntake,
    check_streams,
    connect,
)

SinkFor = Callable[[str], JetStreamIntake]
"""A sink for the events and dead letters of one input file (named for its dead letters)."""


@asynccontextmanager
async def intake(nats_url: str, *, in_flight: int) -> AsyncIterator[SinkFor]:
    """Connect (failing fast with ``Unreachable``), check the streams (``StreamsMissing``), and
    hand out sinks that keep up to ``in_flight`` publishes awaiting their acknowledgement."""
    nc = await connect(nats_url)
    try:
        await check_streams(nc.jetstream())
        publishing = nc.jetstream(publish_async_max_pending=in_flight)
        yield lambda file_name: JetStreamIntake(AsyncPublisher(publishing), file_name=file_name)
    finally:
        await nc.close()
