"""``cw audit``'s accounting rules, on plain inputs."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from uuid import UUID

import pytest

from services.consumer.model import StreamPlace, Tracked
from services.projector.domain.audit import (
    DEAD_LETTER_GONE,
    NOT_ARCHIVED,
    OTHER_EVENTS_KIND,
    AuditReport,
    OperatorAction,
    Outcome,
    StreamMessage,
    Unaccounted,
    audit,
    audit_window,
    replaced_stream,
    unaccounted_ranges,
)

pytestmark = pytest.mark.unit

A = UUID("0b6f1c55-0000-4000-8000-00000000000a")
B = UUID("0b6f1c55-0000-4000-8000-00000000000b")
WHEN = datetime(2023, 4, 1, tzinfo=UTC)


def event_id(seq: int) -> str:
    """The id of the event a test stream holds at ``seq``."""
    return str(UUID(int=seq))


def msgs(*seqs: int, ids: Mapping[int, UUID | str] = {}) -> list[StreamMessage]:
    """Messages whose ids are ``event_id(seq)``, or as ``ids`` says."""
    return [
        StreamMessage(s, f"cw.events.320703.V{s}.IssueFound", str(ids.get(s, event_id(s))))
        for s in seqs
    ]


def run(
    messages: list[StreamMessage],
    archived: set[int] | Mapping[int, str],
    outcomes: list[Outcome] = [],  # noqa: B006 - never mutated
    *,
    first: int = 1,
    checkpoint: int | None = None,
    ids: set[UUID] = {A},  # noqa: B006
    letters: set[int] = set(),  # noqa: B006
    actions: list[OperatorAction] = [],  # noqa: B006
    replaced: str | None = None,
) -> AuditReport:
    """``archived`` as a set: the archive holds, at those sequences, the stream's own events."""
    if not isinstance(archived, Mapping):
        archived = {m.seq: m.message_id for m in messages if m.seq in archived}
    return audit(
        first_seq=first,
        checkpoint=max(m.seq for m in messages) if checkpoint is None else checkpoint,
        messages=messages,
        archived=archived,
        outcomes=outcomes,
        archived_event_ids=ids,
        dead_letter_seqs=letters,
        actions=actions,
        replaced=replaced,
    )


def test_a_healthy_stream_with_duplicates_dead_letters_and_actions_is_clean() -> None:
    report = run(
        msgs(1, 2, 3, 4, 5, 6, 8, ids={3: A}),  # 7 was deleted from the stream: not counted
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
    report = run(
        msgs(1, 2, 3, ids={2: A, 3: B}),
        {1},
        [Outcome(2, "duplicate", A), Outcome(3, "duplicate", B)],
    )
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


def test_a_message_where_the_archive_holds_another_event_is_unaccounted() -> None:
    # The archive's sequences 2-4 hold the events of another stream of that name.
    elsewhere = {s: str(UUID(int=1000 + s)) for s in (2, 3, 4)}
    report = run(msgs(1, 2, 3, 4, 5), {1: event_id(1), **elsewhere, 5: event_id(5)})
    assert (report.checked, report.archived) == (5, 2)
    assert [(u.seq, u.reason) for u in report.unaccounted] == [
        (
            s,
            f"the archive holds event {elsewhere[s]} at sequence {s}; "
            f"CW_EVENTS holds event {event_id(s)} there",
        )
        for s in (2, 3, 4)
    ]
    # One range: each message names its own ids, the range says what they share and the first.
    [group] = report.ranges()
    assert (group.seqs, group.count) == ("2-4", 3)
    assert group.reason == f"{OTHER_EVENTS_KIND} (at 2: {report.unaccounted[0].reason})"


def test_an_outcome_recorded_for_another_event_is_unaccounted() -> None:
    other = UUID(int=999)
    report = run(
        msgs(1, 2, 3, 4, ids={2: A}),
        {1},
        [
            Outcome(2, "duplicate", other),  # the read model's duplicate was of another event
            Outcome(3, "dead_lettered", other, "venue_mismatch"),
            Outcome(4, "dead_lettered", None, "invalid_field"),  # names none: nothing to compare
        ],
        ids={A, other},
        letters={3, 4},
    )
    assert [(u.seq, u.reason) for u in report.unaccounted] == [
        (
            2,
            f"the read model recorded event {other} at sequence 2 as a duplicate; CW_EVENTS "
            f"holds event {A} there",
        ),
        (
            3,
            f"the read model recorded event {other} at sequence 3 as a dead letter; CW_EVENTS "
            f"holds event {event_id(3)} there",
        ),
    ]
    assert (report.dead_lettered, report.still_dead_letters) == (1, 1)


def test_a_message_that_is_not_an_event_is_named_so() -> None:
    report = run(msgs(1, ids={1: "sha256:0123abcd"}), {1: event_id(1)})
    assert report.unaccounted[0].reason.endswith(
        "CW_EVENTS holds a message that is not an event (sha256:0123abcd) there"
    )


def place(last: int, message_id: str | None, first: int = 1) -> StreamPlace:
    return StreamPlace("CW_EVENTS", first, last, message_id)


def test_the_stream_the_read_model_followed_is_not_replaced() -> None:
    x = event_id(171)
    assert replaced_stream([]) is None
    assert replaced_stream([("", Tracked(0), place(0, None))]) is None  # nothing taken yet
    assert replaced_stream([("", Tracked(171, x), place(300, x))]) is None
    # a checkpoint from before ids were kept, a message deleted there: nothing to compare
    assert replaced_stream([("", Tracked(171), place(300, event_id(5)))]) is None
    assert replaced_stream([("", Tracked(171, x), place(300, None))]) is None


def test_another_stream_of_that_name_is_said_in_one_line_with_the_remedy() -> None:
    x, y = event_id(171), event_id(5)
    line = replaced_stream([("", Tracked(171, x), place(158, y))])
    assert line is not None and "\n" not in line
    assert line.startswith(
        f"CW_EVENTS is not the stream the read model followed: its checkpoint is message {x} "
        "at sequence 171, but CW_EVENTS ends at sequence 158"
    )
    assert line.endswith(
        "Restore CW_EVENTS from its backup (docs/operations.md); only if this CW_EVENTS holds "
        "the whole history under new sequences, run `cw rebuild`"
    )
    partitions = replaced_stream(
        [
            ("cw.events.320703.>", Tracked(171, x), place(300, y)),
            ("cw.events.320705.>", Tracked(172, x), place(300, y)),
            ("cw.events.320706.>", Tracked(173, y), place(300, y)),  # this one may be the same
        ]
    )
    assert partitions is not None
    assert partitions.startswith(
        "CW_EVENTS is not the stream the read model's partition cw.events.320703.> followed"
    )
    assert f"holds message {y} there (another stream of that name) (and 1 more partition)." in (
        partitions
    )


def test_a_replaced_stream_is_not_clean_and_says_so_in_json() -> None:
    report = run(msgs(1), {1}, replaced="CW_EVENTS is not the stream the read model followed")
    assert not report.clean and not report.unaccounted
    assert report.as_dict()["stream_replaced"] == report.replaced
    assert run(msgs(1), {1}).as_dict()["stream_replaced"] is None
