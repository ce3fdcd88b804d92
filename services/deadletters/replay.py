"""Putting a dead letter back: validate it (or its fix), publish it, and only then remove it.

The order is the point: the dead letter is deleted after ``CW_EVENTS`` has acknowledged the
event, so a crash in between leaves a dead letter whose event is already stored. Replaying it
again is then harmless: the publish comes back as a duplicate of the same bytes, and the dead
letter is removed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import orjson
from nats.js.api import PubAck

from contracts import Event, EventRejected, FieldError, decode_event
from services.common.deadletters import TRUNCATED, DeadLetter
from services.common.streams import DEAD_LETTERS_STREAM, EVENTS_STREAM


class DeadLetters(Protocol):
    async def get(self, seq: int) -> DeadLetter | None: ...

    async def delete(self, seq: int) -> bool: ...


class Events(Protocol):
    async def publish(self, subject: str, payload: bytes, msg_id: str) -> PubAck: ...

    async def payload_at(self, seq: int) -> bytes | None: ...


@dataclass(frozen=True, slots=True)
class Candidate:
    """What would be published: the event and the exact bytes."""

    event: Event
    payload: bytes


@dataclass(frozen=True, slots=True)
class ReplayOutcome:
    seq: int
    replayed: bool
    text: str


def candidate(letter: DeadLetter, fixed: bytes | None = None) -> Candidate:
    """The event to put back; raise ``EventRejected`` if the payload (or the fix) is invalid.

    The original payload is published unchanged. A fix read from a file is published compact,
    one line like every other event, however it was indented.
    """
    cut = letter.headers.get(TRUNCATED)
    if fixed is None and cut is not None:
        raise EventRejected(
            [
                FieldError(
                    "(event)",
                    f"only the first {len(letter.payload)} of {cut} bytes were kept; "
                    "replay a fixed event with --file",
                )
            ]
        )
    raw = (letter.payload if fixed is None else fixed).strip()
    event = decode_event(raw)
    return Candidate(event, raw if fixed is None else orjson.dumps(orjson.loads(raw)))


async def replay(
    seq: int, dead_letters: DeadLetters, events: Events, *, fixed: bytes | None = None
) -> ReplayOutcome:
    letter = await dead_letters.get(seq)
    if letter is None:
        return ReplayOutcome(
            seq, False, f"no dead letter {seq} in {DEAD_LETTERS_STREAM} (replayed or removed?)"
        )
    try:
        chosen = candidate(letter, fixed)
    except EventRejected as exc:
        what = "the fix is" if fixed is not None else "still"
        return ReplayOutcome(seq, False, f"kept: {what} invalid: {exc.reason}")
    event = chosen.event
    ack = await events.publish(event.subject, chosen.payload, str(event.event_id))
    if ack.duplicate:
        stored = await events.payload_at(ack.seq)
        if stored != chosen.payload:
            return ReplayOutcome(
                seq,
                False,
                f"kept: {EVENTS_STREAM} already holds a different event with event_id "
                f"{event.event_id} (seq {ack.seq}) inside its duplicate window; give the fix a "
                "new event_id, or replay it after the window has passed",
            )
    await dead_letters.delete(seq)
    how = "already in" if ack.duplicate else "published to"
    return ReplayOutcome(
        seq,
        True,
        f"{how} {EVENTS_STREAM} as seq {ack.seq} on {event.subject}; "
        f"removed from {DEAD_LETTERS_STREAM}",
    )
