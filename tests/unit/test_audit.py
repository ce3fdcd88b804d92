"""``cw audit``'s accounting rules, on plain inputs."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import pytest

from services.projector.domain.audit import (
    DEAD_LETTER_GONE,
    NOT_ARCHIVED,
    AuditReport,
    OperatorAction,
    Outcome,
    StreamMessage,
    Unaccounted,
    audit,
    audit_window,
    unaccounted_ranges,
)

pytestmark = pytest.mark.unit

A = UUID("0b6f1c55-0000-4000-8000-00000000000a")
B = UUID("0b6f1c55-0000-4000-8000-00000000000b")
WHEN = datetime(2023, 4, 1, tzinfo=UTC)


def msgs(*seqs: int) -> list[StreamMessage]:
    return [StreamMessage(s, f"cw.events.320703.V{s}.IssueFound") for s in seqs]


def run(
    messages: list[StreamMessage],
    archived: set[int],
    outcomes: list[Outcome] = [],  # noqa: B006 - never mutated
    *,
    first: int = 1,
    checkpoint: int | None = None,
    ids: set[UUID] = {A},  # noqa: B006
    letters: set[int] = set(),  # noqa: B006
    actions: list[OperatorAction] = [],  # noqa: B006
) -> AuditReport:
    return audit(
        first_seq=first,
        checkpoint=max(m.seq for m in messages) if checkpoint is None else checkpoint,
        messages=messages,
        archived_seqs=archived,
        outcomes=outcomes,
        archived_event_ids=ids,
        dead_letter_seqs=letters,
        actions=actions,
    )


def test_a_healthy_stream_with_duplicates_dead_letters_and_actions_is_clean() -> None:
    report = run(
        msgs(1, 2, 3, 4, 5, 6, 8),  # 7 was deleted from the stream: it does not count
        {1, 2, 6, 8},
        [
            Outcome(3, "duplicate", A),
            Outcome(4, "dead_lettered", None, "invalid_field"),
            Outcome(5, "dead_lettered", None, "subject_mismatch"),
        ],
        letters={4},
        actions=[OperatorAction(5, "replayed", WHEN, "fixed the district")],
    )
    assert report.clean
    assert (report.checked, report.archived, report.duplicates) == (7, 4, 1)
    assert (report.dead_lettered, report.still_dead_letters, report.replayed) == (2, 1, 1)
    assert report.deleted == 0
    assert report.as_dict()["clean"] is True


def test_a_message_neither_archived_nor_with_an_outcome_is_unaccounted() -> None:
    report = run(msgs(1, 2, 3, 4, 5), {1, 5})
    assert not report.clean
    assert [(u.seq, u.reason) for u in report.unaccounted] == [
        (2, NOT_ARCHIVED),
        (3, NOT_ARCHIVED),
        (4, NOT_ARCHIVED),
    ]
    assert report.unaccounted[0].subject == "cw.events.320703.V2.IssueFound"


def test_a_duplicate_of_an_event_missing_from_the_archive_is_unaccounted() -> None:
    report = run(msgs(1, 2, 3), {1}, [Outcome(2, "duplicate", A), Outcome(3, "duplicate", B)])
    assert report.duplicates == 1
    assert [(u.seq, u.reason) for u in report.unaccounted] == [
        (3, f"duplicate of event {B}, which is not in the archive")
    ]


def test_a_dead_letter_gone_without_an_operator_action_is_unaccounted() -> None:
    report = run(
        msgs(1, 2, 3),
        {1},
        [Outcome(2, "dead_lettered", None, "invalid_field"), Outcome(3, "dead_lettered")],
        actions=[OperatorAction(3, "deleted", WHEN, "test data")],
    )
    assert (report.dead_lettered, report.deleted) == (1, 1)
    assert [(u.seq, u.reason) for u in report.unaccounted] == [(2, DEAD_LETTER_GONE)]


def test_an_unknown_outcome_is_not_taken_as_accounting() -> None:
    report = run(msgs(1, 2), {1}, [Outcome(2, "lost in thought")])
    assert [u.reason for u in report.unaccounted] == ["outcome 'lost in thought' is not one the "
                                                      "audit knows"]  # fmt: skip


def test_only_the_range_since_through_the_checkpoint_counts() -> None:
    report = run(msgs(1, 2, 3, 4, 5, 6), {3, 4}, first=3, checkpoint=4)
    assert report.clean
    assert report.checked == 2


def test_unaccounted_messages_group_into_ranges_by_contiguity_and_reason() -> None:
    items = [
        Unaccounted(2, "cw.events.a", NOT_ARCHIVED),
        Unaccounted(3, "cw.events.b", NOT_ARCHIVED),
        Unaccounted(4, "cw.events.a", NOT_ARCHIVED),
        Unaccounted(5, "cw.events.c", DEAD_LETTER_GONE),
        Unaccounted(9, "cw.events.c", DEAD_LETTER_GONE),
    ]
    ranges = unaccounted_ranges(items)
    assert [(r.seqs, r.count, r.reason, r.subjects) for r in ranges] == [
        ("2-4", 3, NOT_ARCHIVED, ("cw.events.a", "cw.events.b")),
        ("5", 1, DEAD_LETTER_GONE, ("cw.events.c",)),
        ("9", 1, DEAD_LETTER_GONE, ("cw.events.c",)),
    ]


def test_the_periodic_window_ends_at_the_checkpoint() -> None:
    assert audit_window(25_000, 10_000) == 15_001
    assert audit_window(300, 10_000) == 1
