"""The rules of ``cw dlq``, pure: what may be put back, where, and when a dead letter may go.

A dead letter is removed only when its event is in ``CW_EVENTS`` on the right subject and will
be, or was, projected. These functions decide each part of that from plain values; the NATS and
PostgreSQL calls that fetch the values live in ``adapters/``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import orjson

from contracts import Event, EventRejected, FieldError, decode_event
from contracts.wire import INTAKE_STAGE
from services.common.deadletters import (
    ISSUE_VENUE,
    STAGE,
    STREAM_SEQ,
    SUBJECT,
    TARGET,
    TRUNCATED,
    DeadLetter,
    header_text,
)
from services.common.localtime import shown

VENUE_MISMATCH = "venue_mismatch"
EVENT_ID_REUSED = "event_id_reused"

ActionName = Literal["replayed", "deleted"]


@dataclass(frozen=True, slots=True)
class Candidate:
    """What would be published: the event and the exact bytes."""

    event: Event
    payload: bytes


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A message as ``CW_EVENTS`` holds it at one sequence."""

    seq: int
    subject: str
    data: bytes
    headers: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class ArchivedEvent:
    """An event the projector has archived (``public.event_archive``)."""

    stream_seq: int
    subject: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class Action:
    """What an operator did with a dead letter (a row of ``cw.dead_letter_actions``)."""

    stage: str
    dead_letter_seq: int
    original_stream_seq: int | None
    action: ActionName
    event_id: uuid.UUID | None
    event_stream_seq: int | None
    reason: str | None
    acted_at: datetime | None = None

    def describe(self, zone: ZoneInfo) -> str:
        """``recorded as deleted at 2026-11-25 15:58:12 +08:00 (why)``: on the campaign's clock."""
        when = (
            f" at {shown(self.acted_at, zone, seconds=True, offset=True)}" if self.acted_at else ""
        )
        if self.action == "replayed":
            where = f" as seq {self.event_stream_seq}" if self.event_stream_seq else ""
            return f"recorded as replayed{where}{when}"
        return f"recorded as deleted{when} ({self.reason})"


def replay_msg_id(letter: DeadLetter) -> str:
    """The ``Nats-Msg-Id`` of a replay.

    Not the event_id: the original message (published with ``Nats-Msg-Id = event_id``) may still
    be inside the duplicate window, and JetStream would then answer with the original's sequence,
    on the wrong subject, instead of storing the fix. Keyed by the dead letter, so that a second
    replay after a crash lands on the first one instead of storing the event twice.
    """
    return f"replay:{letter.stage}:{letter.seq}"


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


def original_event_id(letter: DeadLetter) -> uuid.UUID | None:
    """The event_id of the dead-lettered payload, when it is JSON with a valid one."""
    try:
        obj = orjson.loads(letter.payload)
    except orjson.JSONDecodeError:
        return None
    value = obj.get("event_id") if isinstance(obj, dict) else None
    if not isinstance(value, str):
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def subject_place(subject: str | None) -> tuple[str, str] | None:
    """(district, venue_id) of ``cw.events.<district>.<venue_id>.<event_type>``."""
    parts = (subject or "").split(".")
    if len(parts) != 5 or parts[:2] != ["cw", "events"] or not all(parts):
        return None
    return parts[2], parts[3]


def whose(letter: DeadLetter) -> str:
    """What the letter is by its subject, in words: ``district 320703's intake letter``."""
    if letter.stage != INTAKE_STAGE:
        return f"the {letter.stage}'s letter"
    if letter.district is None:
        return "an intake letter"
    return f"district {letter.district}'s intake letter"


_ONLY_SERVICES_SAY = {
    SUBJECT: "an intake letter holds a line a publisher sent, never a stream message",
    STREAM_SEQ: "an intake letter holds a line a publisher sent, never a stream message",
    ISSUE_VENUE: "only the projector's letters name the venue of an issue",
    TARGET: "only the notifier's letters name a target that refused",
}


def claim_problems(letter: DeadLetter) -> list[FieldError]:
    """The headers ``letter``'s subject denies, each named with why it is not believed.

    A letter claiming to be another stage's, or to come from a stream message, is not replayed
    whatever else is right with it: replayed with the operator's rights, its headers would
    speak for whoever they name. Its writer can publish what is its own itself.
    """
    problems: list[FieldError] = []
    for name, value in letter.claims.items():
        if name == STAGE:
            why = f"the letter was written to {letter.subject}, so it is {whose(letter)}"
        else:
            why = _ONLY_SERVICES_SAY[name]
        problems.append(FieldError(name, f"claims {header_text(value)}, but {why}"))
    return problems


def intake_district_problem(letter: DeadLetter, event: Event) -> FieldError | None:
    """Why ``event`` may not replace an intake letter's: it names another district than the one
    whose publisher wrote the letter (``cw.dlq.intake.<district>``). No ``--force`` passes it:
    replayed elsewhere with the operator's rights, one district would speak for another."""
    sender = letter.district
    if sender is None or event.district == sender:
        return None
    return FieldError(
        "district",
        f"is {event.district}, but district {sender}'s publisher sent the line "
        f"({letter.subject}); a replacement stays in that district",
    )


def identity_problems(letter: DeadLetter, event: Event) -> list[FieldError]:
    """Why ``event`` is not a replacement for ``letter``'s event (empty when it is).

    A replacement keeps the original event_id, and the district and venue of the subject it was
    published on: with per-district permissions, the subject is what NATS authorised, so a fix
    cannot move an event to another district or venue. For ``venue_mismatch`` the venue is the
    issue's venue instead, where the follow-up event belongs. Intake dead letters have no event
    subject; their own subject names the district whose publisher sent the line
    (``cw.dlq.intake.<district>``), and a replacement stays in it
    (``intake_district_problem``).
    """
    problems: list[FieldError] = []
    original_id = original_event_id(letter)
    if original_id is not None and event.event_id != original_id:
        problems.append(
            FieldError(
                "event_id",
                f"is {event.event_id}, but the dead letter's event has {original_id}; "
                "a replacement keeps the event_id of the event it replaces",
            )
        )
    place = subject_place(letter.original_subject)
    if place is not None:
        district, subject_venue = place
        if event.district != district:
            problems.append(
                FieldError(
                    "district",
                    f"is {event.district}, but the event came on {letter.original_subject} "
                    f"(district {district}); a replacement stays in that district",
                )
            )
    else:
        subject_venue = None
        elsewhere = intake_district_problem(letter, event)
        if elsewhere is not None:
            problems.append(elsewhere)
    believed = letter.kind == VENUE_MISMATCH and ISSUE_VENUE not in letter.claims
    issue_venue = letter.headers.get(ISSUE_VENUE) if believed else None
    if issue_venue:
        if event.venue_id != issue_venue:
            problems.append(
                FieldError(
                    "venue_id",
                    f"is {event.venue_id}, but the issue belongs to venue {issue_venue}; "
                    f"a replacement names the issue's venue {issue_venue}",
                )
            )
    elif subject_venue is not None and event.venue_id != subject_venue:
        problems.append(
            FieldError(
                "venue_id",
                f"is {event.venue_id}, but the event came on {letter.original_subject} "
                f"(venue {subject_venue}); a replacement names venue {subject_venue}",
            )
        )
    return problems


def same_event(archived: ArchivedEvent, event: Event) -> bool:
    """Whether the archived event is ``event`` (decoded and compared, not byte for byte)."""
    try:
        return decode_event(archived.payload) == event
    except EventRejected:
        return False  # unreadable today: not provably the same, so not the same


def stored_problem(
    letter: DeadLetter, chosen: Candidate, stored: StoredMessage | None
) -> str | None:
    """Why the message ``CW_EVENTS`` acknowledged is not the replacement (None when it is)."""
    if stored is None:
        return "the acknowledged message is not in CW_EVENTS (removed by its limits?)"
    if letter.original_stream_seq is not None and stored.seq == letter.original_stream_seq:
        return (
            f"CW_EVENTS answered with seq {stored.seq}, the original dead-lettered message, "
            "not a new one"
        )
    if stored.subject != chosen.event.subject:
        return (
            f"CW_EVENTS seq {stored.seq} is on {stored.subject}, "
            f"not on the event's subject {chosen.event.subject}"
        )
    if stored.data != chosen.payload:
        return (
            f"CW_EVENTS seq {stored.seq} holds an earlier replay of this dead letter with other "
            "content; replay the same content again, or remove it with cw dlq delete"
        )
    return None


CLOCK_TOLERANCE_S = 300
"""How far the clocks of the stage that rejected and of PostgreSQL may differ."""


def acted_since(letter: DeadLetter) -> datetime | None:
    """Actions recorded before this moment belong to an older dead letter with the same
    sequence (``CW_DEAD_LETTERS`` recreated), not to ``letter``."""
    try:
        rejected = datetime.fromisoformat(letter.rejected_at)
    except ValueError:
        return None
    if rejected.tzinfo is None:
        return None
    return rejected - timedelta(seconds=CLOCK_TOLERANCE_S)
