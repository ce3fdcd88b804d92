"""The projector: the consumer kit's loop (``services.consumer.loop``) applying batches to the
read model, and how a delivered message becomes an event or a rejection."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta

from contracts import EventRejected, decode_event
from services.common.campaign import Campaign
from services.common.deadletters import ISSUE_VENUE
from services.common.retry import FOREVER, RetryPolicy
from services.consumer.loop import Consumer
from services.projector.domain.model import (
    BatchOutcome,
    Changes,
    Delivery,
    Outcome,
    Prepared,
    Refusal,
    Rejection,
    StreamEvent,
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


def classify(exc: EventRejected) -> str:
    """A small, fixed set of reasons for the metric label (the full reason is in the DLQ)."""
    first = exc.errors[0] if exc.errors else None
    if first is None:
        return "invalid_field"
    if first.field == "(event)":
        if first.reason.startswith("malformed JSON"):
            return "malformed_json"
        if "bytes; the limit" in first.reason:
            return "too_large"
        return "not_an_object"
    if first.field == "event_type":
        return "unknown_event_type"
    if first.field == "schema_version":
        return "schema_version"
    return "invalid_field"


def decode_delivery(d: Delivery, campaign: Campaign) -> Prepared:
    try:
        event = decode_event(d.data)
    except EventRejected as exc:
        return Rejection(d, exc.reason, exc.first_field, classify(exc))
    except Exception as exc:
        # A registered upcaster that crashes on an odd event: that event is unreadable, which
        # is bad input too; it must reach the dead letters, not vanish in a callback.
        log.exception("event at sequence %s could not be read", d.seq)
        return Rejection(d, f"unreadable: {type(exc).__name__}: {exc}", "(event)", "unreadable")
    if event.subject != d.subject:
        # With per-district permissions on subjects, the subject is what NATS authorised: an
        # envelope naming another district or venue must not slip past them.
        return Rejection(
            d,
            f"subject {d.subject} does not match the event (expected {event.subject})",
            "district/venue_id/event_type",
            "subject_mismatch",
        )
    phase = event.phase or campaign.phase_of(event.occurred_at)
    return StreamEvent(d.seq, event, d.data, d.subject, phase, d.headers)


class Projector(Consumer[BatchOutcome]):
    """The projector: the consumer loop applying batches to the read model."""

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

    async def stored_checkpoint(self) -> int:
        return await self.store.checkpoint()

    async def apply(
        self, events: Sequence[StreamEvent], through_seq: int, outcomes: Sequence[Outcome]
    ) -> BatchOutcome:
        return await apply_batch(
            self.store, events, through_seq, self.campaign.rebound_window, outcomes=outcomes,
            refuse=self._refuse,
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
