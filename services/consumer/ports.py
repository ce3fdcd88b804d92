"""What a consumer's loop needs from the world: a source of messages, a place for dead
letters, the single-writer lock, and someone to tell how it goes. Adapters implement these."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, TypeVar

from typing_extensions import TypeVar as DefaultTypeVar

from services.consumer.model import Delivery, Prepared, StreamPlace

O_contra = TypeVar("O_contra", contravariant=True)
P = DefaultTypeVar("P", default=Prepared)
"""What a source hands out: events or rejections, unless a consumer reads another family."""


class Fenced(RuntimeError):
    """Another process took the write lock over: this one must stop, not retry."""


class CheckpointRegression(RuntimeError):
    """A checkpoint may only move forward: a lower value means two writers, or a bug."""


class Unstorable(RuntimeError):
    """The store cannot hold what a unit tried to write (a data error, not a lost connection):
    retrying the same unit can never succeed."""


class Source(Protocol[P]):
    """Messages of a stream in order, without holes (``services.consumer.jetstream``)."""

    @property
    def stream(self) -> str: ...
    async def place(self, seq: int) -> StreamPlace: ...
    async def start(self, after_seq: int) -> None: ...
    async def restart(self, after_seq: int) -> None: ...
    def needs_restart(self) -> str | None: ...
    def invalidate(self, reason: str, detail: str = "") -> None: ...
    async def next_batch(self, wait_s: float) -> list[P]: ...
    async def ack_taken(self) -> None: ...
    async def stop(self) -> None: ...


class DeadLetters(Protocol):
    """Where rejected and refused messages are kept, with their reasons."""

    async def publish(
        self,
        delivery: Delivery,
        reason: str,
        field: str,
        kind: str,
        extra: Mapping[str, str] | None = None,
    ) -> None: ...


class Writer(Protocol):
    """The single-writer lock."""

    async def ensure(self) -> bool:
        """Hold the write lock; ``True`` if it had been lost and was taken again."""
        ...


class Observer(Protocol[O_contra]):
    """What the loop reports as it goes (metrics); ``O`` is what a committed batch reports."""

    def batch_done(self, outcome: O_contra, size: int, seconds: float) -> None: ...
    def retried(self, stage: str) -> None: ...
    def dead_lettered(self, kind: str) -> None: ...
    def consumer_restarted(self, reason: str) -> None: ...
