"""The consumer loop on fakes: a batch it drops is never skipped by the batches behind it."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from services.common.campaign import load_campaign
from services.consumer.model import StreamPlace
from services.projector.adapters.memory import MemoryReadModel
from services.projector.adapters.metrics import ProjectorMetrics
from services.projector.domain.model import Prepared
from services.projector.runner import Projector
from tests import factories as f
from tests.read_model_suite import stream
from tests.support.waiting import eventually

pytestmark = pytest.mark.unit
CAMPAIGN = load_campaign()


class BufferedSource:
    """Like the JetStream source: deliveries arrive ahead of the loop and wait in a buffer, and
    after ``invalidate`` the buffer is still handed out before ``needs_restart`` says so."""

    def __init__(self, messages: list[Prepared]) -> None:
        self.messages = messages
        self.at = 0
        self.broken: str | None = None
        self.restarts: list[tuple[str | None, int]] = []

    @property
    def stream(self) -> str:
        return "CW_EVENTS"

    async def place(self, seq: int) -> StreamPlace:
        """Always the stream the consumer followed."""
        return StreamPlace("CW_EVENTS", 1, max([m.seq for m in self.messages], default=0), None)

    async def start(self, after_seq: int) -> None:
        self.at = after_seq

    async def restart(self, after_seq: int) -> None:
        self.restarts.append((self.broken, after_seq))
        self.at, self.broken = after_seq, None

    def needs_restart(self) -> str | None:
        buffered = any(m.seq > self.at for m in self.messages)
        return self.broken if not buffered else None

    def invalidate(self, reason: str, detail: str = "") -> None:
        self.broken = self.broken or reason

    async def next_batch(self, wait_s: float) -> list[Prepared]:
        batch = [m for m in self.messages if m.seq > self.at][:2]
        if batch:
            self.at = batch[-1].seq
        else:
            await asyncio.sleep(wait_s)
        return batch

    async def ack_taken(self) -> None:
        return None

    async def stop(self) -> None:
        return None


class LockLostOnce:
    """The write lock's connection dropped before the second batch and was taken again."""

    def __init__(self) -> None:
        self.calls = 0

    async def ensure(self) -> bool:
        self.calls += 1
        return self.calls == 2


async def test_the_batch_in_hand_when_the_lock_is_regained_is_not_skipped() -> None:
    events = stream([f.issue("V1", f"I{i}", f.at("2023-03-01 10:00")) for i in range(8)])
    source = BufferedSource(list(events))
    store = MemoryReadModel()
    projector = Projector(
        source, store, CAMPAIGN, ProjectorMetrics(), dead_letters=None,
        writer=LockLostOnce(), fetch_wait=timedelta(milliseconds=1),
    )  # fmt: skip
    task = asyncio.create_task(projector.run())

    async def done() -> bool:
        return await store.checkpoint() == 8

    try:
        await eventually(done, within=10, what="the projector reaches sequence 8", running=[task])
    finally:
        projector.stopping.set()
        await asyncio.wait_for(task, 10)
    # Restarted at once, at the checkpoint of the batch before (2); then every issue is there.
    assert source.restarts == [(None, 2)]
    assert len(store.state.issues) == 8
