"""Putting a dead letter back (``replay``) or letting it go (``delete``), one dead letter at a time.

A dead letter is removed only when its event is in ``CW_EVENTS`` on the right subject and will
be, or was, projected:
1. the letter must be what its subject says (``domain.claim_problems``: headers that claim
   another stage, or a stream message for an intake letter, keep it, ``--force`` or not); the
   event (or the fix) must be valid and a replacement for the original: same event_id,
   district and venue of the subject it came on (``domain.identity_problems``; ``--force``
   overrides, except an intake letter's district: ``domain.intake_district_problem``), in a
   district the campaign file lists (else the projector would dead-letter it again as
   ``unknown_district``);
2. the archive is asked about the event_id: archived with the same event -> it was projected,
   nothing is published; archived with other content -> the projector would dead-letter it again
   (``event_id_reused``), so it is kept; not archived -> it is published;
3. it is published with ``Nats-Msg-Id = replay:<stage>:<dead letter seq>``, and the message at
   the acknowledged sequence is read back: on the event's subject, the replacement's bytes, and
   not the original dead-lettered message;
4. the action is recorded in ``cw.dead_letter_actions``, then the dead letter is deleted.

A crash anywhere is mended by running the same command again: before 3, nothing happened; after
3, the publish lands on the first one (same Nats-Msg-Id, inside the duplicate window) or the
archive already has the event; after 4's record, the recorded action is found and only the
removal is done. One dead letter has at most one action row: the first recorded counts.

Known limit: an event with the same event_id that sits in ``CW_EVENTS`` but is not projected yet
(the projector lagging) is not seen by step 2.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal, Protocol
from zoneinfo import ZoneInfo

from nats.js.api import PubAck

from contracts import EventRejected, FieldError
from services.common.campaign import Names
from services.common.deadletters import DeadLetter
from services.common.streams import DEAD_LETTERS_STREAM, EVENTS_STREAM
from services.deadletters.domain.rules import (
    Action,
    ArchivedEvent,
    StoredMessage,
    candidate,
    claim_problems,
    identity_problems,
    intake_district_problem,
    original_event_id,
    replay_msg_id,
    same_event,
    stored_problem,
)

REMOVED = f"removed from {DEAD_LETTERS_STREAM}"


class DeadLetters(Protocol):
    async def get(self, seq: int) -> DeadLetter | None: ...

    async def delete(self, seq: int) -> bool: ...


class Events(Protocol):
    async def publish(self, subject: str, payload: bytes, msg_id: str) -> PubAck: ...

    async def message_at(self, seq: int) -> StoredMessage | None: ...


class Archive(Protocol):
    async def find(self, event_id: uuid.UUID) -> ArchivedEvent | None: ...


class Actions(Protocol):
    async def of_letter(self, letter: DeadLetter) -> Action | None: ...

    async def last_of_seq(self, seq: int) -> Action | None: ...

    async def record(self, letter: DeadLetter, action: Action) -> tuple[Action, bool]: ...


@dataclass(frozen=True, slots=True)
class Outcome:
    seq: int
    done: bool
    """Replay: the event is in CW_EVENTS and the dead letter gone. Delete: the dead letter gone."""
    text: str


async def replay(
    seq: int,
    dead_letters: DeadLetters,
    events: Events,
    archive: Archive,
    actions: Actions,
    *,
    fixed: bytes | None = None,
    force: bool = False,
    zone: ZoneInfo,
    names: Names | None = None,
) -> Outcome:
    """Put dead letter ``seq`` back (module docstring); ``names``: the campaign's districts,
    which the event's must be one of (``None``: not checked)."""
    letter = await dead_letters.get(seq)
    if letter is None:
        return await _gone(seq, actions, "replayed", zone)
    earlier = await actions.of_letter(letter)
    if earlier is not None:
        # A crash after recording, before removing: the recorded action stands.
        await dead_letters.delete(seq)
        tail = "" if earlier.action == "replayed" else ", not replayed"
        return Outcome(
            seq, earlier.action == "replayed", f"{earlier.describe(zone)}; {REMOVED}{tail}"
        )
    claims = claim_problems(letter)
    if claims:
        return Outcome(seq, False, f"kept: {_claims_refused(seq, claims)}")
    try:
        chosen = candidate(letter, fixed)
    except EventRejected as exc:
        what = "the fix is" if fixed is not None else "still"
        return Outcome(seq, False, f"kept: {what} invalid: {exc.reason}")
    event = chosen.event
    problems = identity_problems(letter, event)
    elsewhere = intake_district_problem(letter, event)
    if elsewhere is not None or (problems and not force):
        why = "; ".join(str(p) for p in problems)
        then = (
            " (--force never publishes a district's letter into another district)"
            if elsewhere is not None
            else ", or pass --force to publish it anyway"
        )
        return Outcome(
            seq,
            False,
            f"kept: not a replacement for the dead letter's event: {why}. Fix it and replay it "
            f"with --file{then}",
        )
    if names is not None and not names.knows_district(event.district):
        return Outcome(
            seq,
            False,
            f"kept: district {event.district} is not one of the campaign's districts, so the "
            "projector would dead-letter it again as unknown_district: add its line to the "
            "campaign file's districts, restart the projector and the reminders service, then "
            "replay it",
        )
    how = "as it was" if fixed is None else "with a fix"
    note = f"replayed {how}" + (
        f"; --force past: {'; '.join(map(str, problems))}" if problems else ""
    )

    archived = await archive.find(event.event_id)
    if archived is not None:
        if not same_event(archived, event):
            return Outcome(
                seq,
                False,
                f"kept: event_id {event.event_id} is already projected with other content "
                f"({EVENTS_STREAM} seq {archived.stream_seq} on {archived.subject}), so the "
                "projector would dead-letter this one again as event_id_reused. Give the fix a "
                f"new event_id and replay it with --file and --force, or remove it with "
                f"cw dlq delete {seq} --reason TEXT",
            )
        recorded, new = await actions.record(
            letter, _replayed(letter, event.event_id, archived.stream_seq, "already projected")
        )
        await dead_letters.delete(seq)
        return Outcome(
            seq,
            True,
            f"already projected: {EVENTS_STREAM} seq {archived.stream_seq} on "
            f"{archived.subject} is the same event (event_id {event.event_id}); nothing "
            f"published; {_recorded(recorded, new, zone)}; {REMOVED}",
        )

    ack = await events.publish(event.subject, chosen.payload, replay_msg_id(letter))
    if ack.stream != EVENTS_STREAM:
        return Outcome(
            seq, False, f"kept: {event.subject} was stored in {ack.stream}, not {EVENTS_STREAM}"
        )
    problem = stored_problem(letter, chosen, await events.message_at(ack.seq))
    if problem is not None:
        return Outcome(seq, False, f"kept: {problem}")
    recorded, new = await actions.record(letter, _replayed(letter, event.event_id, ack.seq, note))
    await dead_letters.delete(seq)
    where = f"{EVENTS_STREAM} as seq {ack.seq} on {event.subject}"
    if ack.duplicate:
        where = f"already in {where} (an earlier replay of this dead letter)"
    else:
        where = f"published to {where}"
    return Outcome(
        seq,
        True,
        f"{where}; the projector will project it; {_recorded(recorded, new, zone)}; {REMOVED}",
    )


async def delete(
    seq: int, dead_letters: DeadLetters, actions: Actions, *, reason: str, zone: ZoneInfo
) -> Outcome:
    """Record that dead letter ``seq`` was deleted, and why; then remove it."""
    letter = await dead_letters.get(seq)
    if letter is None:
        return await _gone(seq, actions, "deleted", zone)
    recorded, new = await actions.record(
        letter,
        Action(
            stage=letter.stage,
            dead_letter_seq=letter.seq,
            original_stream_seq=letter.original_stream_seq,
            action="deleted",
            event_id=original_event_id(letter),
            event_stream_seq=None,
            reason=reason,
        ),
    )
    await dead_letters.delete(seq)
    return Outcome(seq, True, f"deleted; {_recorded(recorded, new, zone)}; {REMOVED}")


def _replayed(letter: DeadLetter, event_id: uuid.UUID, event_seq: int, note: str) -> Action:
    return Action(
        stage=letter.stage,
        dead_letter_seq=letter.seq,
        original_stream_seq=letter.original_stream_seq,
        action="replayed",
        event_id=event_id,
        event_stream_seq=event_seq,
        reason=note,
    )


def _recorded(action: Action, new: bool, zone: ZoneInfo) -> str:
    if new:
        return "recorded in cw.dead_letter_actions"
    return f"already {action.describe(zone)} in cw.dead_letter_actions (no second record)"


async def _gone(
    seq: int, actions: Actions, wanted: Literal["replayed", "deleted"], zone: ZoneInfo
) -> Outcome:
    last = await actions.last_of_seq(seq)
    if last is None:
        # Said after "dead letter SEQ: ", so the sequence is not repeated here.
        return Outcome(
            seq,
            False,
            f"not in {DEAD_LETTERS_STREAM}, and no replay or delete of it is recorded",
        )
    done = wanted == "deleted" or last.action == "replayed"
    return Outcome(seq, done, f"no longer in {DEAD_LETTERS_STREAM}: {last.describe(zone)}")


def _claims_refused(seq: int, claims: list[FieldError]) -> str:
    """Why a letter whose headers its subject denies is not replayed, and what to do instead."""
    why = "; ".join(str(c) for c in claims)
    return (
        f"its headers claim what its subject denies: {why}. A letter is what its subject says, "
        f"and --force does not pass this: remove it with cw dlq delete {seq} --reason TEXT"
    )
