"""The projector's use cases beside the live loop: a rebuild with no downtime, and a venue as it
stood at a past moment. Service layer: ports only, no driver."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta

from contracts.wire import EVENTS_STREAM
from services.projector.domain.model import StreamEvent, VenueAsOf
from services.projector.domain.ports import (
    Generation,
    Generations,
    Missing,
    ReadModelStore,
    StreamEnd,
)
from services.projector.domain.projection import venues_as_of
from services.projector.runner import Projector

Progress = Callable[[int, int], None]
"""Told how far a rebuild has got: (applied through, the stream's end)."""


class WouldLoseEvents(RuntimeError):
    """The rebuilt generation lacks events the live read model holds: the stream lost history
    (recreated, restored from an older backup, another server). The swap did not happen, the
    new generation is dropped, the live one is as it was."""

    def __init__(self, generation: Generation, missing: Missing) -> None:
        self.generation, self.missing = generation, missing
        where = (
            f" (archived at stream sequences {missing.first_seq}-{missing.last_seq})"
            if missing.first_seq is not None
            else ""
        )
        super().__init__(
            f"refused to swap: the live read model holds {missing.events:,} events{where} that "
            f"{EVENTS_STREAM} no longer has, and generation {generation.number} was rebuilt "
            f"without them; generation {generation.number} dropped, the live read model "
            f"unchanged. Restore {EVENTS_STREAM} from its backup (docs/operations.md), then "
            "rebuild"
        )


async def rebuild(
    generations: Generations,
    build: Callable[[ReadModelStore], Awaitable[Projector]],
    stream: StreamEnd,
    *,
    wait_s: float,
    progress: Progress | None = None,
    progress_every_s: float = 5.0,
    accept_loss: bool = False,
) -> list[str]:
    """Replay the stream into a new generation beside the live one, then swap it in atomically.
    ``progress`` hears (applied through, stream end) every few seconds while it replays.

    ``build`` starts a projector that writes to the store it is given, from the start of the
    stream, with no dead-letter publisher (rejected messages were dead-lettered when they
    first arrived: they are only recorded again).

    Never empties the views from a stream that lost its history: when the live archive holds
    events (by event id) the new generation does not, raise ``WouldLoseEvents`` instead of the
    swap, unless ``accept_loss``.
    """
    generation = await generations.create()
    report = [f"rebuild: building generation {generation.number} ({generation.name})"]
    builder = await build(generations.store(generation.name))
    try:
        await catch_up(builder, stream, wait_s, progress, progress_every_s)
        # The long part of the comparison while the live projector still writes; under the
        # swap's lock, only what may have changed since (the live generation cannot gain events
        # then).
        before = await generations.compare(generation.name)
        async with generations.swapping(generation.name) as swap:
            builder.store = swap.store
            await catch_up(builder, stream, wait_s)
            through = await swap.store.checkpoint()
            missing = await swap.missing(before)
            if missing.events and not accept_loss:
                raise WouldLoseEvents(generation, missing)
            old = await swap.commit_to(through)
    except BaseException:
        await generations.drop(generation.name)
        raise
    finally:
        await builder.source.stop()
    await generations.drop(old)
    if missing.events:
        report.append(
            f"rebuild: {missing.events:,} events of the live read model are not in generation "
            f"{generation.number}: swapped in all the same, as asked (--accept-loss)"
        )
    report.append(
        f"rebuild: generation {generation.number} is live at stream sequence {through}; "
        f"dropped {old}"
    )
    return report


async def catch_up(
    builder: Projector,
    stream: StreamEnd,
    wait_s: float,
    progress: Progress | None = None,
    every_s: float = 5.0,
) -> None:
    """Apply batches until the builder's checkpoint reaches the stream's end as it is now."""
    told = time.monotonic()
    while True:
        target = await stream.last_seq()
        checkpoint = await builder.store.checkpoint()
        if progress is not None and time.monotonic() - told >= every_s:
            progress(checkpoint, target)
            told = time.monotonic()
        if checkpoint >= target:
            return
        batch = await builder.source.next_batch(wait_s)
        if batch:
            await builder.handle(batch)
        elif await stream.pending() == 0:
            return  # the stream's tail was deleted: nothing more will come


def venue_as_of(
    history: Sequence[StreamEvent], moment: datetime, rebound_window: timedelta
) -> list[VenueAsOf]:
    """A venue's issues as they stood at ``moment``: its archived events replayed. One per
    district the venue id has any event in; an empty list: an unknown venue."""
    return venues_as_of(history, moment, rebound_window)
