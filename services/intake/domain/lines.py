"""Judging the lines of a JSON Lines file: each is an event to publish or a rejection to report.

Pure: no files, no NATS. A line is judged with exactly the validation the services use
(``contracts.decode_event``), so what ``cw publish`` accepts the projector accepts too.
"""

from __future__ import annotations

from dataclasses import dataclass

from contracts import MAX_EVENT_BYTES, Event, EventRejected, FieldError, decode_event


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


@dataclass(slots=True)
class IntakeReport:
    """What became of a file, in counts: a rejected line is reported as it is met, not kept
    (a file of a million bad lines must not fill the memory)."""

    published: int = 0
    duplicate: int = 0
    blank: int = 0
    rejected: int = 0
    dead_lettered: int = 0
    lines_read: int = 0
    unconfirmed: int = 0
    failure: str | None = None

    @property
    def exit_code(self) -> int:
        """0: everything published; 1: some lines rejected; 2: NATS did not confirm some events."""
        if self.failure is not None or self.unconfirmed:
            return 2
        return 1 if self.rejected else 0
