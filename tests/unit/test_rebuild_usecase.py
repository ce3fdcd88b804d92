"""The rebuild use case on fakes of its ports: no driver, no server."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest

from services.common.campaign import load_campaign
from services.consumer.model import StreamPlace, message_id_of
from services.projector import usecases
from services.projector.adapters.memory import MemoryGenerations, MemoryReadModel
from services.projector.adapters.metrics import ProjectorMetrics
from services.projector.domain.model import Prepared
from services.projector.domain.ports import ReadModelStore
from services.projector.runner import Projector
from services.projector.service import apply_batch
from tests import factories as f
from tests.read_model_suite import stream

pytestmark = pytest.mark.unit
CAMPAIGN = load_campaign()


class ListSource:
    """The stream as a list, handed out in batches of two."""

    def __init__(self, messages: list[Prepared]) -> None:
        self.messages = messages
        self.at = 0
        self.stopped = False

    @property
    def stream(self) -> str:
        return "CW_EVENTS"

    async def place(self, seq: int) -> StreamPlace:
        """Always the stream the consumer followed."""
        return StreamPlace("CW_EVENTS", 1, max([m.seq for m in self.messages], default=0), None)

    async def start(self, after_seq: int) -> None:
        self.at = after_seq

    async def restart(self, after_seq: int) -> None:
        self.at = after_seq

    def needs_restart(self) -> str | None:
        return None

    def invalidate(self, reason: str, detail: str = "") -> None:
        raise AssertionError(reason)

    async def next_batch(self, wait_s: float) -> list[Prepared]:
        batch = [m for m in self.messages if m.seq > self.at][:2]
        if batch:
            self.at = batch[-1].seq
        return batch

    async def ack_taken(self) -> None:
        return None

    async def stop(self) -> None:
        self.stopped = True


class ListEnd:
    def __init__(self, source: ListSource) -> None:
        self.source = source

    async def last_seq(self) -> int:
        return self.source.messages[-1].seq

    async def pending(self) -> int:
        return sum(1 for m in self.source.messages if m.seq > self.source.at)


async def test_a_rebuild_replays_the_stream_into_a_new_generation_and_swaps_it_in() -> None:
    events = stream([f.issue("V1", f"I{i}", f.at("2023-03-01 10:00")) for i in range(5)])
    source = ListSource(list(events))
    generations = MemoryGenerations()

    async def build(store: ReadModelStore) -> Projector:
        builder = Projector(
            source, store, CAMPAIGN, ProjectorMetrics(),
            dead_letters=None, fetch_wait=timedelta(milliseconds=1),
        )  # fmt: skip
        await source.start(0)
        return builder

    report = await usecases.rebuild(generations, build, ListEnd(source), wait_s=0.001)
    assert report == [
        "rebuild: building generation 2 (g2)",
        "rebuild: generation 2 is live at stream sequence 5; dropped g1",
    ]
    assert (generations.live, generations.dropped, source.stopped) == ("g2", ["g1"], True)
    assert await generations.stores["g2"].checkpoint() == 5
    assert len(generations.stores["g2"].state.issues) == 5


async def test_a_rebuild_tells_how_far_it_has_got() -> None:
    events = stream([f.issue("V1", f"I{i}", f.at("2023-03-01 10:00")) for i in range(6)])
    source = ListSource(list(events))
    told: list[tuple[int, int]] = []

    async def build(store: ReadModelStore) -> Projector:
        builder = Projector(
            source, store, CAMPAIGN, ProjectorMetrics(),
            dead_letters=None, fetch_wait=timedelta(milliseconds=1),
        )  # fmt: skip
        await source.start(0)
        return builder

    await usecases.rebuild(
        MemoryGenerations(), build, ListEnd(source), wait_s=0.001,
        progress=lambda applied, end: told.append((applied, end)), progress_every_s=0,
    )  # fmt: skip
    # Batches of two: told before each, and once more at the end.
    assert told == [(0, 6), (2, 6), (4, 6), (6, 6)]


EVENTS = [f.issue("V1", f"I{i}", f.at("2023-03-01 10:00")) for i in range(6)]


async def live_read_model(partitions: tuple[str, ...] = ("",)) -> MemoryReadModel:
    """A live generation that projected ``EVENTS`` at sequences 1-6 (one checkpoint per
    partition, as several projectors keep)."""
    live = MemoryReadModel(partition=partitions[0])
    history = stream(EVENTS)
    last_id = message_id_of(history[-1].raw)
    await apply_batch(live, history, 6, CAMPAIGN.rebound_window, through_id=last_id)
    for partition in partitions[1:]:
        other = MemoryReadModel(partition=partition, shared=live)
        async with other.unit() as unit:
            await unit.set_checkpoint(6, last_id)
    return live


def builder_of(source: ListSource) -> Callable[[ReadModelStore], Awaitable[Projector]]:
    async def build(store: ReadModelStore) -> Projector:
        builder = Projector(
            source, store, CAMPAIGN, ProjectorMetrics(),
            dead_letters=None, fetch_wait=timedelta(milliseconds=1),
        )  # fmt: skip
        await source.start(0)
        return builder

    return build


async def test_a_rebuild_from_a_stream_that_lost_history_refuses_to_swap() -> None:
    generations = MemoryGenerations(await live_read_model())
    source = ListSource(list(stream(EVENTS[2:])))  # recreated with the last four events only
    with pytest.raises(usecases.WouldLoseEvents) as refused:
        await usecases.rebuild(generations, builder_of(source), ListEnd(source), wait_s=0.001)
    assert (refused.value.missing.events, refused.value.missing.first_seq) == (2, 1)
    assert refused.value.missing.last_seq == 2
    assert str(refused.value) == (
        "refused to swap: the live read model holds 2 events (archived at stream sequences 1-2) "
        "that CW_EVENTS no longer has, and generation 2 was rebuilt without them; generation 2 "
        "dropped, the live read model unchanged. Restore CW_EVENTS from its backup "
        "(docs/operations.md), then rebuild"
    )
    assert (generations.live, generations.dropped, source.stopped) == ("g1", ["g2"], True)
    assert len(generations.stores["g1"].state.issues) == 6
    assert await generations.stores["g1"].checkpoint() == 6


async def test_a_rebuild_that_would_lose_events_swaps_when_told_to() -> None:
    generations = MemoryGenerations(await live_read_model())
    source = ListSource(list(stream(EVENTS[2:])))
    report = await usecases.rebuild(
        generations, builder_of(source), ListEnd(source), wait_s=0.001, accept_loss=True
    )
    assert report[1:] == [
        "rebuild: 2 events of the live read model are not in generation 2: swapped in all the "
        "same, as asked (--accept-loss)",
        "rebuild: generation 2 is live at stream sequence 4; dropped g1",
    ]
    assert generations.live == "g2" and len(generations.stores["g2"].state.issues) == 4


async def test_a_stream_with_the_whole_history_under_new_sequences_swaps_and_carries_ids() -> None:
    generations = MemoryGenerations(await live_read_model(("", "cw.events.320705.>")))
    moved: list[Prepared] = list(stream(EVENTS[::-1]))  # the same events, in another order
    source = ListSource(moved)
    report = await usecases.rebuild(generations, builder_of(source), ListEnd(source), wait_s=0.001)
    assert report[-1] == "rebuild: generation 2 is live at stream sequence 6; dropped g1"
    state = generations.stores["g2"].state
    # Every partition goes on from the new stream's sequence 6, whose message is the first event.
    assert state.checkpoints == {("projector", ""): 6, ("projector", "cw.events.320705.>"): 6}
    assert set(state.checkpoint_ids.values()) == {str(EVENTS[0].event_id)}
