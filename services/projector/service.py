"""The projector's service layer: apply one batch of events exactly once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from uuid import UUID

from services.projector.domain.model import BatchOutcome, Changes, Outcome, Refusal, StreamEvent
from services.projector.domain.ports import ReadModelStore, ReadModelUnit
from services.projector.domain.projection import needs_of, project

__all__ = ["BatchOutcome", "Refuse", "apply_batch"]

Refuse = Callable[[Refusal], Awaitable[None]]
"""Stores a refused event as a dead letter; called before the unit commits."""


async def apply_batch(
    store: ReadModelStore,
    events: Sequence[StreamEvent],
    through_seq: int,
    rebound_window: timedelta,
    *,
    outcomes: Sequence[Outcome] = (),
    refuse: Refuse | None = None,
    through_id: str | None = None,
) -> BatchOutcome:
    """Apply ``events`` and move the checkpoint to ``through_seq`` in one transaction.

    ``through_seq`` also covers messages of the batch that were not events (dead-lettered before
    this call, and listed in ``outcomes``), so that they are not looked at again; ``through_id``
    is the id of the message at ``through_seq`` (what tells this stream from another). An event
    whose id is archived with other content, or that names another venue than its issue's, is
    handed to ``refuse`` (a dead letter) before the commit and recorded, never applied.
    """
    async with store.unit() as unit:
        checkpoint = await unit.checkpoint()
        fresh: list[StreamEvent] = []
        repeats: list[tuple[StreamEvent, StreamEvent]] = []  # (repeat, first in this batch)
        first_of: dict[UUID, StreamEvent] = {}
        for se in events:
            if se.seq <= checkpoint:
                continue
            first = first_of.get(se.event.event_id)
            if first is None:
                first_of[se.event.event_id] = se
                fresh.append(se)
            else:
                repeats.append((se, first))
        already_done = len(events) - len(fresh) - len(repeats)
        new_seqs = await unit.archive(fresh) if fresh else set()
        new = [se for se in fresh if se.seq in new_seqs]
        recorded = list(outcomes)
        refused: list[Refusal] = []
        seen_before = [se for se in fresh if se.seq not in new_seqs]
        if seen_before or repeats:
            archived = await unit.archived([se.event.event_id for se in seen_before])
            pairs = [(se, archived.get(se.event.event_id)) for se in seen_before]
            pairs += [(se, first.event) for se, first in repeats]
            for se, original in pairs:
                if original is None or original == se.event:
                    recorded.append(Outcome(se.seq, "duplicate", se.event.event_id))
                else:
                    refused.append(_reused(se))
        changes = Changes()
        if new:
            snapshot = await unit.load(needs_of(new, rebound_window))
            changes = project(snapshot, new, rebound_window)
            await unit.save(changes)
            refused += changes.refused
        if refused:
            await _refuse_all(unit, refused, refuse, recorded)
        if recorded:
            await unit.record_outcomes(recorded)
        if through_seq > checkpoint:
            await unit.set_checkpoint(through_seq, through_id)
            checkpoint = through_seq
    return BatchOutcome(
        applied=max(0, len(new) - len(changes.refused)),
        duplicates=sum(1 for o in recorded if o.outcome == "duplicate"),
        already_done=already_done,
        checkpoint=checkpoint,
        changes=changes,
        refused=tuple(refused),
    )


def _reused(se: StreamEvent) -> Refusal:
    return Refusal(
        se,
        "event_id_reused",
        "event_id",
        f"event_id {se.event.event_id} is already archived with other content; "
        "a changed event needs a new event_id",
    )


async def _refuse_all(
    unit: ReadModelUnit,
    refused: Sequence[Refusal],
    refuse: Refuse | None,
    recorded: list[Outcome],
) -> None:
    for r in refused:
        if refuse is not None:
            await refuse(r)
        recorded.append(Outcome(r.event.seq, "dead_lettered", r.event.event.event_id, r.kind))
    # A refused event was archived (now, or when it started waiting for its issue), except a
    # reused id, which never was under this sequence; out of the archive, its fix can be replayed
    # under the same event_id.
    await unit.unarchive([r.event for r in refused if r.kind != "event_id_reused"])
