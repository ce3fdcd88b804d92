"""The projector: the consumer kit's loop (``services.consumer.loop``) applying batches to the
read model, and how a delivered message becomes an event or a rejection."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta

from services.common.campaign import Campaign
from services.common.deadletters import ISSUE_VENUE
from services.common.retry import FOREVER, RetryPolicy
from services.consumer.decoding import classify, decode_delivery
from services.consumer.loop import Consumer
from services.projector.domain.model import (
    BatchOutcome,
    Changes,
    Delivery,
    Outcome,
    Refusal,
    StreamEvent,
    Tracked,
)
from services.projector.domain.ports import (
    DeadLetters,
    Observer,
    ReadModelStore,
    Source,
    Writer,
)
from services.projector.service import apply_batch

log = logging.getLogger("cw.projector")

__all__ = ["Projector", "classify", "decode_delivery"]


class Projector(Consumer[BatchOutcome]):
    """The projector: the consumer loop applying batches to the read model."""

    name = "projector"

    def __init__(
        self,
        source: Source,
        store: ReadModelStore,
        campaign: Campaign,
        metrics: Observer[BatchOutcome],
        *,
        dead_letters: DeadLetters | None,
        writer: Writer | None = None,
        fetch_wait: timedelta = timedelta(seconds=1),
        retry_policy: RetryPolicy = FOREVER,
    ) -> None:
        super().__init__(
            source,
            metrics,
            dead_letters=dead_letters,
            writer=writer,
            fetch_wait=fetch_wait,
            retry_policy=retry_policy,
        )
        self.store = store
        self.campaign = campaign

    async def tracked(self) -> Tracked:
        return await self.store.tracked()

    async def apply(
        self, events: Sequence[StreamEvent], through: Tracked, outcomes: Sequence[Outcome]
    ) -> BatchOutcome:
        return await apply_batch(
            self.store, events, through.seq, self.campaign.rebound_window, outcomes=outcomes,
            refuse=self._refuse, through_id=through.message_id,
        )  # fmt: skip

    def merge(self, first: BatchOutcome, second: BatchOutcome) -> BatchOutcome:
        return _merge(first, second)

    async def _refuse(self, refusal: Refusal) -> None:
        se = refusal.event
        extra = {ISSUE_VENUE: refusal.issue_venue} if refusal.issue_venue else None
        delivery = Delivery(se.seq, se.subject, se.raw, se.headers)
        await self.dead_letter(delivery, refusal.reason, refusal.field, refusal.kind, extra)


def _merge(a: BatchOutcome, b: BatchOutcome) -> BatchOutcome:
    changes = Changes()
    for part in (a.changes, b.changes):
        for event_type, n in part.applied.items():
            changes.applied[event_type] = changes.applied.get(event_type, 0) + n
        changes.deferred += part.deferred
        changes.resumed += part.resumed
    return BatchOutcome(
        applied=a.applied + b.applied,
        duplicates=a.duplicates + b.duplicates,
        already_done=a.already_done + b.already_done,
        checkpoint=max(a.checkpoint, b.checkpoint),
        changes=changes,
        refused=a.refused + b.refused,
    )
