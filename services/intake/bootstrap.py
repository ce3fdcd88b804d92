"""``cw publish``'s composition root: the connections, the sink its use case writes to, and the
read model it asks which events are held already."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

from services.common.connect import NatsAccess
from services.common.refusals import Refusals
from services.intake.adapters.jetstream import (
    AsyncPublisher,
    JetStreamIntake,
    check_streams,
    connect,
)
from services.intake.adapters.postgres import PostgresArchive
from services.intake.domain.ports import ReadModelArchive

SinkFor = Callable[[str], JetStreamIntake]
"""A sink for the events and dead letters of one input file (named for its dead letters)."""


@dataclass(frozen=True, slots=True)
class Intake:
    sink_for: SinkFor
    archive: ReadModelArchive | None
    """``None`` when no database was given."""
    duplicate_window: timedelta | None
    """``CW_EVENTS``'s, as the stream is configured; ``None``: this user may not ask."""


@asynccontextmanager
async def intake(
    nats_url: NatsAccess | str,
    *,
    in_flight: int,
    database_url: str | None = None,
    district: str | None = None,
) -> AsyncIterator[Intake]:
    """Connect (failing fast with ``Unreachable``), check the streams (``StreamsMissing``), and
    hand out sinks that keep up to ``in_flight`` publishes awaiting their acknowledgement. The
    read model at ``database_url`` is connected to meanwhile; it is never a condition.
    ``district``: the publisher's own (``CW_DISTRICT``), where rejected lines are filed."""
    archive = PostgresArchive(database_url) if database_url is not None else None
    try:
        refusals = Refusals()
        nc = await connect(nats_url, refusals)
        try:
            window = await check_streams(nc.jetstream(), refusals)
            publishing = nc.jetstream(publish_async_max_pending=in_flight)
            yield Intake(
                lambda file_name: JetStreamIntake(
                    AsyncPublisher(publishing, refusals=refusals),
                    file_name=file_name,
                    district=district,
                ),
                archive,
                window,
            )
        finally:
            await nc.close()
    finally:
        if archive is not None:
            await archive.close()
