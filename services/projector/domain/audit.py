"""``cw audit``'s rules: is every message of ``CW_EVENTS`` up to the checkpoint accounted for?

A message the projector took is accounted for when
- its event is in the archive (at that stream sequence); or
- it has a recorded outcome ``duplicate`` naming an event that is in the archive; or
- it has a recorded outcome ``dead_lettered`` and its dead letter is still in
  ``CW_DEAD_LETTERS``, or an operator's action on that dead letter (replayed, deleted) is
  recorded in ``cw.dead_letter_actions``.
Anything else is unaccounted for, with a plain reason. Pure: the adapter gathers the inputs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal
from uuid import UUID

DUPLICATE = "duplicate"
DEAD_LETTERED = "dead_lettered"

NOT_ARCHIVED = "not in the archive and no outcome recorded"
DEAD_LETTER_GONE = "dead-lettered but the dead letter is gone and no operator action is recorded"
UNKNOWN_OUTCOME = "outcome {outcome!r} is not one the audit knows"
DUPLICATE_OF_NOTHING = "duplicate of event {event_id}, which is not in the archive"
DUPLICATE_WITHOUT_ID = "recorded as a duplicate without the event it duplicates"


class AuditUnavailable(RuntimeError):
    """The audit could not read what it needs (a server away, nothing initialised)."""


@dataclass(frozen=True, slots=True)
class StreamMessage:
    """A message that exists in ``CW_EVENTS``: its sequence and subject."""

    seq: int
    subject: str


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

    @property
    def clean(self) -> bool:
        return not self.unaccounted

    def ranges(self) -> list[UnaccountedRange]:
        return unaccounted_ranges(self.unaccounted)

    def as_dict(self) -> dict[str, object]:
        return {
            "clean": self.clean,
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
    archived_seqs: Set[int],
    outcomes: Iterable[Outcome],
    archived_event_ids: Set[UUID],
    dead_letter_seqs: Set[int],
    actions: Iterable[OperatorAction],
) -> AuditReport:
    """Account for every message in ``first_seq..checkpoint``.

    ``messages``: what exists in the stream in that range (gaps are deleted messages and do not
    count). ``archived_event_ids`` needs to hold at least the event ids that duplicate outcomes
    name. ``dead_letter_seqs``: the original stream sequences of the projector's dead letters
    still in ``CW_DEAD_LETTERS``. Items outside the range are ignored.
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
        if m.seq in archived_seqs:
            tally["archived"] += 1
            continue
        reason = _account(by_seq.get(m.seq), archived_event_ids, dead_letter_seqs, last_action,
                          tally)  # fmt: skip
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
    )


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
            out.append(UnaccountedRange(run[0].seq, run[-1].seq, run[0].reason, subjects, len(run)))

    for u in items:
        if run and (u.seq != run[-1].seq + 1 or u.reason != run[-1].reason):
            close()
            run = []
        run.append(u)
    close()
    return out


def audit_window(checkpoint: int, window: int) -> int:
    """The first sequence of the periodic audit: the last ``window`` sequences up to the
    checkpoint."""
    return max(1, checkpoint - window + 1)
