"""Is the stream a consumer reads the stream it followed? The pure rules, and the loop that
stalls on another stream and resumes by itself."""

from __future__ import annotations

import asyncio
import uuid

import orjson
import pytest

from services.common.campaign import load_campaign
from services.consumer.health import STALLED, Health
from services.consumer.identity import remedy, stream_replaced
from services.consumer.model import Prepared, StreamEvent, StreamPlace, Tracked, message_id_of
from services.projector.adapters.memory import MemoryReadModel
from services.projector.adapters.metrics import ProjectorMetrics
from services.projector.runner import Projector
from tests import factories as f
from tests.read_model_suite import stream
from tests.support.waiting import eventually

pytestmark = pytest.mark.unit
EVENT = "0b6f6a6e-4c2e-4a59-9a53-2a7f2f3b1c01"
OTHER = "7d1c0e52-9d1e-4f7b-8f55-0f9b8b7c6a02"


def place(first: int, last: int, message_id: str | None) -> StreamPlace:
    return StreamPlace("CW_EVENTS", first, last, message_id)


def test_the_id_is_the_event_id_or_the_reminder_id_or_a_digest() -> None:
    assert message_id_of(orjson.dumps({"event_id": EVENT.upper(), "x": 1})) == EVENT
    assert message_id_of(orjson.dumps({"reminder_id": OTHER})) == OTHER
    assert message_id_of(orjson.dumps({"event_id": "not-a-uuid"})) == "not-a-uuid"
    digest = message_id_of(b"\xff not json")
    assert digest.startswith("sha256:") and digest == message_id_of(b"\xff not json")
    assert message_id_of(b"[1, 2]") != message_id_of(b"[1, 3]")
    assert message_id_of(orjson.dumps({"event_id": 7})).startswith("sha256:")


def test_the_same_message_at_the_checkpoint_is_the_same_stream() -> None:
    assert stream_replaced("projector", Tracked(171, EVENT), place(1, 200, EVENT)) is None


def test_another_message_at_the_checkpoint_is_another_stream() -> None:
    why = stream_replaced("projector", Tracked(171, EVENT), place(1, 200, OTHER))
    assert why is not None
    assert f"message {EVENT} at sequence 171" in why and f"holds message {OTHER}" in why
    assert why.startswith("CW_EVENTS is not the stream the projector followed")


def test_a_checkpoint_beyond_the_end_is_another_stream() -> None:
    why = stream_replaced("reminders", Tracked(171, EVENT), place(1, 159, None))
    assert why is not None and "ends at sequence 159" in why and "older backup" in why
    empty = stream_replaced("notifier", Tracked(3, EVENT), place(0, 0, None))
    assert empty is not None and "is empty" in empty


def test_what_is_not_a_replaced_stream() -> None:
    # Nothing taken yet.
    assert stream_replaced("projector", Tracked(0), place(0, 0, None)) is None
    # The stream's own limits (an age, a purge) removed the checkpoint's message.
    assert stream_replaced("notifier", Tracked(171, EVENT), place(172, 171, None)) is None
    assert stream_replaced("notifier", Tracked(171, EVENT), place(400, 900, None)) is None
    # A message deleted at that sequence, or a checkpoint from before ids were kept.
    assert stream_replaced("projector", Tracked(171, EVENT), place(1, 200, None)) is None
    assert stream_replaced("projector", Tracked(171), place(1, 200, OTHER)) is None


def test_the_remedy_names_the_backup_and_the_consumers_own_way_back() -> None:
    assert "`cw rebuild`" in remedy("projector", "CW_EVENTS")
    assert "`cw tracking reset notifier`" in remedy("notifier", "CW_REMINDERS")
    assert "docs/operations.md" in remedy("reminders", "CW_EVENTS")


class SwappableStream:
    """A source whose stream can be swapped for another of the same name."""

    def __init__(self, messages: list[StreamEvent]) -> None:
        self.messages = messages
        self.at = 0
        self.started: list[int] = []
        self.broken: str | None = None

    @property
    def stream(self) -> str:
        return "CW_EVENTS"

    async def place(self, seq: int) -> StreamPlace:
        by_seq = {m.seq: m for m in self.messages}
        here = by_seq.get(seq)
        message_id = None if here is None else message_id_of(here.raw)
        return StreamPlace("CW_EVENTS", 1, max(by_seq, default=0), message_id)

    async def start(self, after_seq: int) -> None:
        self.started.append(after_seq)
        self.at = after_seq

    async def restart(self, after_seq: int) -> None:
        await self.start(after_seq)
        self.broken = None

    def needs_restart(self) -> str | None:
        return self.broken

    def invalidate(self, reason: str, detail: str = "") -> None:
        self.broken = reason

    async def next_batch(self, wait_s: float) -> list[Prepared]:
        batch: list[Prepared] = [m for m in self.messages if m.seq > self.at]
        batch = batch[:3]
        if batch:
            self.at = batch[-1].seq
        else:
            await asyncio.sleep(min(wait_s, 0.01))
        return batch

    async def ack_taken(self) -> None:
        return None

    async def stop(self) -> None:
        return None


def _events(prefix: str, n: int, start: int = 1) -> list[StreamEvent]:
    when = f.at("2023-03-01 10:00")
    return list(stream([f.issue("V1", f"{prefix}{i}", when) for i in range(n)], start))


async def test_the_loop_takes_nothing_from_another_stream_and_resumes_when_it_is_back() -> None:
    original = _events("A", 6)
    source = SwappableStream(list(original))
    store = MemoryReadModel()
    metrics = ProjectorMetrics()
    projector = Projector(source, store, load_campaign(), metrics, dead_letters=None)
    projector.health = Health(standby=False)
    projector.recheck_s = 0.01
    task = asyncio.create_task(projector.run())
    try:

        async def through(seq: int) -> bool:
            return await store.checkpoint() == seq

        await eventually(lambda: through(6), within=5, what="the original stream taken")
        tracked = await store.tracked()
        assert tracked.message_id == str(original[-1].event.event_id)

        # Another stream of the same name, longer than the checkpoint, then a reconnect.
        source.messages = _events("B", 9)
        source.invalidate("reconnect")

        async def stalled() -> bool:
            return projector.replaced is not None

        await eventually(stalled, within=5, what="the consumer stalls on another stream")
        assert projector.health.status()[0] == STALLED
        assert projector.health.status()[1] == projector.replaced
        assert await store.checkpoint() == 6
        assert source.started == [0]  # never started on the other stream

        # The original is back, with two more events: taken from 7 on, nothing of B.
        source.messages = [*original, *_events("C", 2, start=7)]
        await eventually(lambda: through(8), within=5, what="resumed on the original")
        assert projector.replaced is None and projector.health.replaced is None
        archived = {se.event.event_id for se in store.state.archive.values()}
        assert archived == {m.event.event_id for m in source.messages}
    finally:
        projector.stopping.set()
        await asyncio.wait_for(task, 5)


async def test_a_consumer_stopped_while_stalled_stops() -> None:
    source = SwappableStream(_events("A", 2))
    store = MemoryReadModel()
    async with store.unit() as unit:
        await unit.set_checkpoint(5, str(uuid.uuid4()))  # beyond this stream's end
    projector = Projector(source, store, load_campaign(), ProjectorMetrics(), dead_letters=None)
    projector.recheck_s = 30
    task = asyncio.create_task(projector.run())

    async def stalled() -> bool:
        return projector.replaced is not None

    await eventually(stalled, within=5, what="stalled at start")
    projector.stopping.set()
    await asyncio.wait_for(task, 5)  # at once, not after the 30 s recheck
    assert source.started == []
