"""Publishing reminders to ``CW_REMINDERS``: every NATS call of the reminders' outbox."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from uuid import UUID

from contracts.wire import MSG_ID, REMINDERS_STREAM
from services.consumer.jetstream import NatsConnection
from services.reminders.domain.model import OutboxEntry
from services.reminders.domain.ports import Publisher

log = logging.getLogger("cw.reminders")
PUBACK_TIMEOUT_S = 5.0


class JetStreamPublisher(Publisher):
    """Publishes pipelined (a burst waits for one round trip, not one per reminder), each with
    ``Nats-Msg-Id = reminder_id``: a second copy within the duplicate window is dropped by the
    stream and confirmed as a duplicate."""

    def __init__(self, conn: NatsConnection) -> None:
        self._conn = conn

    async def publish(self, entries: Sequence[OutboxEntry]) -> list[UUID]:
        nc = await self._conn.current()
        js = nc.jetstream()
        futures = [
            await js.publish_async(
                e.subject,
                e.payload,
                headers={MSG_ID: str(e.reminder_id)},
                stream=REMINDERS_STREAM,
            )
            for e in entries
        ]
        # One deadline for the whole round, not one per reminder: with NATS away, a round of a
        # thousand reminders must not take a thousand time-outs.
        _, late = await asyncio.wait(futures, timeout=PUBACK_TIMEOUT_S)
        for fut in late:
            fut.cancel()
        done: list[UUID] = []
        for entry, fut in zip(entries, futures, strict=True):
            if fut.cancelled() or fut.exception() is not None:
                # Not confirmed: published again (same Nats-Msg-Id) on the next round.
                why = "no PubAck in time" if fut.cancelled() else repr(fut.exception())
                log.warning("reminder %s not confirmed (%s)", entry.reminder_id, why)
                continue
            done.append(entry.reminder_id)
        return done
