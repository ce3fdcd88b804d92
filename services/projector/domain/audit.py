"""``cw audit``'s rules: is every message of ``CW_EVENTS`` up to the checkpoint accounted for?

First, is ``CW_EVENTS`` the stream the read model followed at all? Each of the projector's
tracking rows (one per partition) keeps the id of the message at its checkpoint
(``services.consumer.identity``); a stream that holds another message there, or ends before it,
is another stream of that name, and the audit says so before anything else.

A message the projector took is accounted for when
- its event is in the archive at that stream sequence, under the message's own event id; or
- it has a recorded outcome ``duplicate`` naming an event that is in the archive; or
- it has a recorded outcome ``dead_lettered`` and its dead letter is still in
  ``CW_DEAD_LETTERS``, or an operator's action on that dead letter (replayed, deleted) is
  recorded in ``cw.dead_letter_actions``.
An outcome that names an event (a duplicate, most dead letters) must name the message's own.
Anything else is unaccounted for, with a plain reason. Pure: the adapter gathers the inputs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal
from uuid import UUID

from contracts.wire import EVENTS_STREAM
from services.consumer.identity import stream_replaced, what_to_do
from services.consumer.model import StreamPlace, Tracked

DUPLICATE = "duplicate"
DEAD_LETTERED = "dead_lettered"

NOT_ARCHIVED = "not in the archive and no outcome recorded"
DEAD_LETTER_GONE = "dead-lettered but the dead letter is gone and no operator action is recorded"
UNKNOWN_OUTCOME = "outcome {outcome!r} is not one the audit knows"
DUPLICATE_OF_NOTHING = "duplicate of event {event_id}, which is not in the archive"
DUPLICATE_WITHOUT_ID = "recorded as a duplicate without the event it duplicates"
OTHER_EVENT = "the archive holds event {archived} at sequence {seq}; {stream} holds {held} there"
OTHER_OUTCOME = (
    "the read model recorded event {recorded} at sequence {seq} as {outcome}; {stream} holds "
    "{held} there"
)
OTHER_EVENTS = "the archive and {stream} hold other events at these sequences"
"""What a range of ``OTHER_EVENT`` and ``OTHER_OUTCOME`` says, before its first message's reason
(each message has its own ids: one line per message would be thousands of lines)."""
OTHER_EVENTS_KIND = OTHER_EVENTS.format(stream=EVENTS_STREAM)


class AuditUnavailable(RuntimeError):
    """The audit could not read what it needs (a server away, nothing initialised)."""


@dataclass(frozen=True, slots=True)
class StreamMessage:
    """A message that exists in ``CW_EVENTS``: its sequence, subject and id."""

    seq: int
    subject: str
    message_id: str
    """``services.consumer.model.message_id_of`` its payload: the event id of an event."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """A row of ``stream_outcomes``: a message taken but not archived, and why."""

    seq: int
    outcome: str
    event_id: UUID | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class OperatorAction:
    """A row of ``cw.dead_letter_actions`` for the projector's stage."""

    original_stream_seq: int
    action: Literal["replayed", "deleted"] | str
    acted_at: datetime | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Unaccounted:
    seq: int
    subject: str
    reason: str
    kind: str = ""
    """What unaccounted messages of one range share when their reasons differ (``OTHER_EVENTS``:
    each names its own ids); empty: the reason itself."""


@dataclass(frozen=True, slots=True)
class UnaccountedRange:
    """Unaccounted messages with contiguous sequences and the same reason."""

    first: int
    last: int
    reason: str
    subjects: tuple[str, ...]
    """Distinct subjects, in stream order."""
    count: int

    @property
    def seqs(self) -> str:
        return str(self.first) if self.first == self.last else f"{self.first}-{self.last}"


@dataclass(frozen=True, slots=True)
class AuditReport:
    first_seq: int
    """The first sequence looked at (``--since``)."""
    checkpoint: int
    """The last one: the projector's checkpoint."""
    checked: int
    """Messages that exist in the stream in ``first_seq..checkpoint``."""
    archived: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    still_dead_letters: int = 0
    replayed: int = 0
    deleted: int = 0
    unaccounted: tuple[Unaccounted, ...] = field(default=())
    replaced: str | None = None
    """Why ``CW_EVENTS`` is not the stream the read model followed, with the remedy, in one
    line (``replaced_stream``); ``None`` when it may be."""

    @property
    def clean(self) -> bool:
        return not self.unaccounted and self.replaced is None

    def ranges(self) -> list[UnaccountedRange]:
        return unaccounted_ranges(self.unaccounted)

    def as_dict(self) -> dict[str, object]:
        return {
            "clean": self.clean,
            "stream_replaced": self.replaced,
            "first_seq": self.first_seq,
            "checkpoint": self.checkpoint,
            "checked": self.checked,
            "archived": self.archived,
            "duplicates": self.duplicates,
            "dead_lettered": {
                "total": self.dead_lettered,
                "still_dead_letters": self.still_dead_letters,
                "replayed": self.replayed,
                "deleted": self.deleted,
            },
            "unaccounted": [
                {"seq": u.seq, "subject": u.subject, "reason": u.reason} for u in self.unaccounted
            ],
            "unaccounted_ranges": [
                {
                    "first": r.first,
                    "last": r.last,
                    "count": r.count,
                    "reason": r.reason,
                    "subjects": list(r.subjects),
                }
                for r in self.ranges()
            ],
        }


def audit(
    *,
    first_seq: int,
    checkpoint: int,
    messages: Iterable[StreamMessage],
    archived: Mapping[int, str],
    outcomes: Iterable[Outcome],
    archived_event_ids: Set[UUID],
    dead_letter_seqs: Set[int],
    actions: Iterable[OperatorAction],
    replaced: str | None = None,
) -> AuditReport:
    """Account for every message in ``first_seq..checkpoint``.

    ``messages``: what exists in the stream in that range (gaps are deleted messages and do not
    count). ``archived``: the archive's event id (as text) at each stream sequence.
    ``archived_event_ids`` needs to hold at least the event ids that duplicate outcomes name.
    ``dead_letter_seqs``: the original stream sequences of the projector's dead letters still in
    ``CW_DEAD_LETTERS``. ``replaced``: what ``replaced_stream`` said. Items outside the range are
    ignored.
    """
    by_seq: dict[int, Outcome] = {o.seq: o for o in outcomes}
    last_action: dict[int, OperatorAction] = {}
    for a in actions:
        last_action[a.original_stream_seq] = a  # in the order recorded: the latest one counts
    tally: Counter[str] = Counter()
    unaccounted: list[Unaccounted] = []
    checked = 0
    for m in messages:
        if not first_seq <= m.seq <= checkpoint:
            continue
        checked += 1
        outcome = by_seq.get(m.seq)
        other = _other_event(m, archived.get(m.seq), outcome)
        if other is not None:
            unaccounted.append(Unaccounted(m.seq, m.subject, other, OTHER_EVENTS_KIND))
            continue
        if m.seq in archived:
            tally["archived"] += 1
            continue
        reason = _account(outcome, archived_event_ids, dead_letter_seqs, last_action, tally)
        if reason is not None:
            unaccounted.append(Unaccounted(m.seq, m.subject, reason))
    return AuditReport(
        first_seq=first_seq,
        checkpoint=checkpoint,
        checked=checked,
        archived=tally["archived"],
        duplicates=tally["duplicates"],
        dead_lettered=tally["dead_lettered"],
        still_dead_letters=tally["still_dead_letters"],
        replayed=tally["replayed"],
        deleted=tally["deleted"],
        unaccounted=tuple(unaccounted),
        replaced=replaced,
    )


_AS = {DUPLICATE: "a duplicate", DEAD_LETTERED: "a dead letter"}


def _other_event(m: StreamMessage, archived: str | None, outcome: Outcome | None) -> str | None:
    """Why the read model's record at ``m.seq`` is of another event than the stream's message
    there (another stream of that name); ``None`` when it is of the same one, or names none."""
    if archived is not None:
        if archived == m.message_id:
            return None
        held = _held(m.message_id)
        return OTHER_EVENT.format(archived=archived, seq=m.seq, stream=EVENTS_STREAM, held=held)
    if outcome is None or outcome.event_id is None or str(outcome.event_id) == m.message_id:
        return None
    return OTHER_OUTCOME.format(
        recorded=outcome.event_id, seq=m.seq, outcome=_AS.get(outcome.outcome, outcome.outcome),
        stream=EVENTS_STREAM, held=_held(m.message_id),
    )  # fmt: skip


def _held(message_id: str) -> str:
    """What the stream holds, in words: an event, or a message that is not one."""
    try:
        return f"event {UUID(message_id)}"
    except ValueError:
        pass
    if message_id.startswith("sha256:"):
        return f"a message that is not an event ({message_id})"
    return f"message {message_id}"


def replaced_stream(
    tracking: Iterable[tuple[str, Tracked, StreamPlace]], stream: str = EVENTS_STREAM
) -> str | None:
    """One line saying that ``stream`` is not the stream the read model followed, and what to
    do; ``None`` when it may be. ``tracking``: each partition's tracking row (``""``: the whole
    stream) and the stream as it is at that row's checkpoint."""
    problems = []
    for partition, tracked, place in tracking:
        who = "read model" if not partition else f"read model's partition {partition}"
        problem = stream_replaced(who, tracked, place)
        if problem is not None:
            problems.append(problem)
    if not problems:
        return None
    more = len(problems) - 1
    also = f" (and {more} more partition{'s' if more > 1 else ''})" if more else ""
    return f"{problems[0]}{also}. {what_to_do('projector', stream)}"


def _account(
    outcome: Outcome | None,
    archived_event_ids: Set[UUID],
    dead_letter_seqs: Set[int],
    actions: Mapping[int, OperatorAction],
    tally: Counter[str],
) -> str | None:
    """Count an unarchived message's outcome; the reason it is unaccounted for, or None."""
    if outcome is None:
        return NOT_ARCHIVED
    if outcome.outcome == DUPLICATE:
        if outcome.event_id is None:
            return DUPLICATE_WITHOUT_ID
        if outcome.event_id not in archived_event_ids:
            return DUPLICATE_OF_NOTHING.format(event_id=outcome.event_id)
        tally["duplicates"] += 1
        return None
    if outcome.outcome == DEAD_LETTERED:
        if outcome.seq in dead_letter_seqs:
            tally["dead_lettered"] += 1
            tally["still_dead_letters"] += 1
            return None
        action = actions.get(outcome.seq)
        if action is None or action.action not in ("replayed", "deleted"):
            return DEAD_LETTER_GONE
        tally["dead_lettered"] += 1
        tally[action.action] += 1
        return None
    return UNKNOWN_OUTCOME.format(outcome=outcome.outcome)


def unaccounted_ranges(items: Sequence[Unaccounted]) -> list[UnaccountedRange]:
    """Group items (in stream order) whose sequences follow each other and share a reason."""
    out: list[UnaccountedRange] = []
    run: list[Unaccounted] = []

    def close() -> None:
        if run:
            subjects = tuple(dict.fromkeys(u.subject for u in run))
            first = run[0]
            reason = first.reason
            if any(u.reason != reason for u in run):
                reason = f"{first.kind} (at {first.seq}: {first.reason})"
            out.append(UnaccountedRange(first.seq, run[-1].seq, reason, subjects, len(run)))

    def group(u: Unaccounted) -> str:
        return u.kind or u.reason

    for u in items:
        if run and (u.seq != run[-1].seq + 1 or group(u) != group(run[-1])):
            close()
            run = []
        run.append(u)
    close()
    return out


def audit_window(checkpoint: int, window: int) -> int:
    """The first sequence of the periodic audit: the last ``window`` sequences up to the
    checkpoint."""
    return max(1, checkpoint - window + 1)
