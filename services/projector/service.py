"""The projector's service layer: apply one batch of events exactly once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from services.projector.domain.model import Changes, StreamEvent
from services.projector.domain.ports import ReadModelStore
from services.projector.domain.projection import needs_of, project


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    applied: int
    """Events whose effects were committed now."""
    duplicates: int
    """Events whose event id was already applied (republished, or published without a msg id)."""
    already_done: int
    """Redeliveries at or below the checkpoint (a crash between commit and ack)."""
    checkpoint: int
    changes: Changes = field(default_factory=Changes)


async def apply_batch(
    store: ReadModelStore,
    events: Sequence[StreamEvent],
    through_seq: int,
    rebound_window: timedelta,
) -> BatchOutcome:
    """Apply ``events`` and move the checkpoint to ``through_seq`` in one transaction.

    ``through_seq`` also covers messages of the batch that were not events (dead-lettered before
    this call), so that they are not looked at again.
    """
    async with store.unit() as unit:
        checkpoint = await unit.checkpoint()
        fresh: list[StreamEvent] = []
        seen_ids = set()
        for se in events:
            if se.seq > checkpoint and se.event.event_id not in seen_ids:
                seen_ids.add(se.event.event_id)
                fresh.append(se)
        already_done = sum(1 for se in events if se.seq <= checkpoint)
        new_seqs = await unit.archive(fresh) if fresh else set()
        new = [se for se in fresh if se.seq in new_seqs]
        changes = Changes()
        if new:
            snapshot = await unit.load(needs_of(new, rebound_window))
            changes = project(snapshot, new, rebound_window)
            await unit.save(changes)
        if through_seq > checkpoint:
            await unit.set_checkpoint(through_seq)
            checkpoint = through_seq
    return BatchOutcome(
        applied=len(new),
        duplicates=len(events) - already_done - len(new),
        already_done=already_done,
        checkpoint=checkpoint,
        changes=changes,
    )
