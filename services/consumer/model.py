"""What every consumer of a stream handles: messages as delivered, events, rejections, and
what became of messages that are not applied. Pure data: no driver is imported here."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol, TypeAlias
from uuid import UUID

import orjson

from contracts import Event


@dataclass(slots=True)
class Delivery:
    """One message as JetStream delivered it (not ``frozen``: see ``StreamEvent``)."""

    seq: int
    subject: str
    data: bytes
    headers: Mapping[str, str] | None


@dataclass(slots=True)
class StreamEvent:
    """A valid event and where it sits in ``CW_EVENTS``.

    Treated as immutable, but not ``frozen``: one is built per message on the hot path, and a
    frozen dataclass costs four times as much to construct.
    """

    seq: int
    event: Event
    raw: bytes
    subject: str
    phase: str
    """The event's own phase, or the one the campaign calendar gives its ``occurred_at``."""
    headers: Mapping[str, str] | None = None
    """The message's headers as received (kept for a dead letter, not stored)."""

    @property
    def message_id(self) -> UUID:
        return self.event.event_id


class StreamMessage(Protocol):
    """What the loop needs of a message it applies (an event; a reminder for the notifier):
    where it sits, its bytes for a dead letter, and its own id."""

    @property
    def seq(self) -> int: ...
    @property
    def subject(self) -> str: ...
    @property
    def raw(self) -> bytes: ...
    @property
    def headers(self) -> Mapping[str, str] | None: ...
    @property
    def message_id(self) -> UUID: ...


OutcomeKind: TypeAlias = Literal["duplicate", "dead_lettered"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of a message that is not in the archive (``cw audit`` reads these)."""

    seq: int
    outcome: OutcomeKind
    event_id: UUID | None
    """For a duplicate, the archived event it repeats; for a dead letter, its id if readable."""
    reason: str | None = None
    """For a dead letter, the reason's class (``invalid_field``, ``venue_mismatch``, ...)."""


@dataclass(frozen=True, slots=True)
class Rejection:
    """A message that is not an event: it goes to the dead letters with its reason."""

    delivery: Delivery
    reason: str
    field: str
    kind: str

    @property
    def seq(self) -> int:
        return self.delivery.seq


Prepared: TypeAlias = StreamEvent | Rejection
"""A message as the source hands it out: decoded and validated, or rejected."""


_ID_KEYS = ("event_id", "reminder_id")
"""Where a message of ``CW_EVENTS`` (an event) or ``CW_REMINDERS`` (a reminder) carries its id."""
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
"""An id already in the form ``str(UUID(...))`` gives (the contract's canonical form): returned as
it is, without parsing it; ``cw audit`` reads the id of every message of the stream."""


def message_id_of(data: bytes) -> str:
    """What tells one message from another at the same sequence of another stream: the event id
    (for a reminder, the reminder id) its payload carries, else a digest of the payload (a
    message that is not an event, which a dead letter took). Read from the bytes alone, so the
    consumer that commits a checkpoint and the check that reads the stream back agree."""
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict):
        for key in _ID_KEYS:
            value = body.get(key)
            if isinstance(value, str) and 0 < len(value) <= 64:
                if _CANONICAL_UUID.fullmatch(value):
                    return value
                try:
                    return str(UUID(value))
                except ValueError:
                    return value
    return "sha256:" + hashlib.sha256(data).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Tracked:
    """Where a consumer stands in its stream: the checkpoint, and the id of the message at that
    sequence (``message_id_of``), which tells the stream it followed from another stream of
    the same name that starts its sequences again (a recreated or restored one)."""

    seq: int
    message_id: str | None = None
    """``None``: nothing taken yet, or a checkpoint committed before ids were kept."""


@dataclass(frozen=True, slots=True)
class StreamPlace:
    """What a stream holds around a checkpoint, read back to check that it is the same stream."""

    stream: str
    first_seq: int
    last_seq: int
    message_id: str | None
    """The id of the message at the checkpoint's sequence; ``None`` when none is stored there."""
