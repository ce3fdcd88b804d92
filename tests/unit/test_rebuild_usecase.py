"""The rebuild use case on fakes of its ports: no driver, no server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest

from services.common.campaign import load_campaign
from services.consumer.model import StreamPlace
from services.projector import usecases
from services.projector.adapters.memory import MemoryReadModel
from services.projector.adapters.metrics import ProjectorMetrics
from services.projector.domain.model import Prepared
from services.projector.domain.ports import Generation, Generations, ReadModelStore, Swap
from services.projector.runner import Projector
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


class MemorySwap(Swap):
    def __init__(self, owner: MemoryGenerations, name: str) -> None:
        self.owner, self.name = owner, name
        self.store = owner.stores[name]

    async def commit_to(self, through: int) -> str:
        old, self.owner.live = self.owner.live, self.name
        return old


class MemoryGenerations(Generations):
    def __init__(self) -> None:
        self.stores: dict[str, MemoryReadModel] = {"g1": MemoryReadModel()}
        self.live = "g1"
        self.dropped: list[str] = []

    async def create(self) -> Generation:
        number = len(self.stores) + 1
        self.stores[f"g{number}"] = MemoryReadModel()
        return Generation(f"g{number}", number)

    def store(self, generation: str) -> ReadModelStore:
        return self.stores[generation]

    @asynccontextmanager
    async def swapping(self, generation: str) -> AsyncIterator[Swap]:
        yield MemorySwap(self, generation)

    async def drop(self, generation: str) -> None:
        self.dropped.append(generation)


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
