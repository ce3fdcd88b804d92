"""Judging the lines of a JSON Lines file: each is an event to publish or a rejection to report.

Pure: no files, no NATS. A line is judged with exactly the validation the services use
(``contracts.decode_event``), so what ``cw publish`` accepts the projector accepts too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import orjson

from contracts import MAX_EVENT_BYTES, Event, EventRejected, FieldError, decode_event
from contracts.events import DISTRICT_CODE
from contracts.wire import UNKNOWN_DISTRICT


@dataclass(frozen=True, slots=True)
class Line:
    """One line of input, without its end of line.

    ``raw`` may be cut short: a reader keeps only what can be judged and dead-lettered, and
    ``size`` says how long the line really was.
    """

    number: int
    raw: bytes
    size: int

    @property
    def cut(self) -> bool:
        return self.size > len(self.raw)


@dataclass(frozen=True, slots=True)
class Accepted:
    """A line that is a valid event; ``payload`` is the publisher's bytes, unchanged."""

    line: int
    event: Event
    payload: bytes

    @property
    def subject(self) -> str:
        return self.event.subject

    @property
    def msg_id(self) -> str:
        return str(self.event.event_id)


@dataclass(frozen=True, slots=True)
class Rejected:
    """A line that is not a valid event: which field is wrong, and why."""

    line: int
    field: str
    reason: str
    payload: bytes
    size: int

    @property
    def cut(self) -> bool:
        return self.size > len(self.payload)


def sender_district(rejected: Rejected, publisher_district: str | None) -> str:
    """The district a rejected line's dead letter is filed under (``cw.dlq.intake.<it>``).

    A publisher restricted to its district (``CW_DISTRICT``) may write only its own dead
    letters, whatever district the line claims; without one, the line's district when it can be
    read, else ``unknown``."""
    if publisher_district is not None:
        return publisher_district
    try:
        claimed = orjson.loads(rejected.payload)
    except orjson.JSONDecodeError:
        return UNKNOWN_DISTRICT
    district = claimed.get("district") if isinstance(claimed, dict) else None
    if isinstance(district, str) and re.fullmatch(DISTRICT_CODE, district):
        return district
    return UNKNOWN_DISTRICT


def judge(line: Line) -> Accepted | Rejected | None:
    """The verdict on one line; ``None`` for a blank line, which is skipped."""
    raw = line.raw.strip()
    if not raw:
        return None
    if line.size > MAX_EVENT_BYTES:
        # Said here, not by decode_event, because a long line reaches us already cut short.
        too_large = EventRejected(
            [FieldError("(event)", f"message is {line.size} bytes; the limit is {MAX_EVENT_BYTES}")]
        )
        return Rejected(line.number, too_large.first_field, too_large.reason, raw, line.size)
    try:
        event = decode_event(raw)
    except EventRejected as exc:
        return Rejected(line.number, exc.first_field, exc.reason, raw, line.size)
    return Accepted(line.number, event, raw)


Prior = Literal["same", "other"]
"""What the read model's archive holds under an event's id: this event, or another one."""


def prior_of(accepted: Accepted, archived: bytes | None) -> Prior | None:
    """Whether the archive holds ``accepted`` already, decided as the projector decides it (the
    decoded events compared, so a re-serialised copy is still the same event)."""
    if archived is None:
        return None
    if archived == accepted.payload:
        return "same"
    try:
        return "same" if decode_event(archived) == accepted.event else "other"
    except EventRejected:
        return "other"  # not readable today: not provably the same


@dataclass(frozen=True, slots=True)
class Conflict:
    """An event whose ``event_id`` the read model holds with other content: the same id was
    used for a different event. ``dropped``: NATS took this one for a duplicate (within the
    stream's duplicate window) and kept the first; otherwise it was stored, and the projector
    dead-letters it as ``event_id_reused``."""

    line: int
    event_id: str
    dropped: bool


@dataclass(slots=True)
class IntakeReport:
    """What became of a file, in counts: a rejected line is reported as it is met, not kept
    (a file of a million bad lines must not fill the memory).

    Every event sent is counted once: ``new``; ``duplicate`` (``CW_EVENTS`` dropped it: sent
    again within its duplicate window); ``already_projected`` (stored again, but the read model
    holds it and the projector skips it by event_id); a conflict (its event_id is held with
    other content: NATS dropped it as a duplicate, or the projector will dead-letter it as
    ``event_id_reused``; either way this event is not what the system holds); or unconfirmed.
    """

    sent: int = 0
    """Events sent to ``CW_EVENTS`` (rejected lines are not events)."""
    new: int = 0
    duplicate: int = 0
    already_projected: int = 0
    conflicts: int = 0
    """Events whose event_id the read model holds with other content (``Conflict``)."""
    archive_unavailable: str | None = None
    """Why the read model was not asked; then ``new`` may hold events it already has."""
    blank: int = 0
    rejected: int = 0
    dead_lettered: int = 0
    lines_read: int = 0
    unconfirmed: int = 0
    failure: str | None = None

    @property
    def held(self) -> int:
        """Events the system had already: in the duplicate window, or in the read model."""
        return self.duplicate + self.already_projected

    def count_ack(self, duplicate: bool, prior: Prior | None) -> None:
        # Another payload under a held id is a conflict whether or not NATS dropped it as a
        # duplicate: what was sent is not what the system holds.
        if prior == "other":
            self.conflicts += 1
        elif duplicate:
            self.duplicate += 1
        elif prior == "same":
            self.already_projected += 1
        else:
            self.new += 1

    @property
    def exit_code(self) -> int:
        """0: everything published; 1: some lines rejected or in conflict; 2: NATS did not
        confirm some events."""
        if self.failure is not None or self.unconfirmed:
            return 2
        return 1 if self.rejected or self.conflicts else 0
