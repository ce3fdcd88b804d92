"""The pure rules of ``cw dlq``: what replaces a dead letter's event, and what was stored."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import orjson
import pytest

from contracts import encode_event
from services.common.deadletters import ISSUE_VENUE, DeadLetter, dead_letter_headers
from services.deadletters.domain.rules import (
    Action,
    Candidate,
    StoredMessage,
    identity_problems,
    original_event_id,
    replay_msg_id,
    stored_problem,
    subject_place,
)
from tests import factories as f

pytestmark = pytest.mark.unit

SUBJECT = "cw.events.320703.LY-FM-001.RecheckFailed"


def _letter(
    payload: bytes, subject: str | None = SUBJECT, kind: str | None = None, **extra: str
) -> DeadLetter:
    headers = dead_letter_headers(
        stage="projector" if subject else "intake",
        reason="test",
        field="(event)",
        payload=payload,
        subject=subject,
        stream_seq=7 if subject else None,
        kind=kind,
        extra=extra,
    )
    return DeadLetter.from_message(3, "cw.dlq.projector", payload, headers)


def test_subject_place_reads_district_and_venue_of_an_events_subject() -> None:
    assert subject_place(SUBJECT) == ("320703", "LY-FM-001")
    assert subject_place("cw.events.320703.LY-FM-001") is None
    assert subject_place("cw.other.320703.LY-FM-001.X") is None
    assert subject_place(None) is None


def test_the_subject_not_the_body_decides_district_and_venue() -> None:
    body = f.recheck_failed("NODE-53c9d4", "I-1", f.at("2023-03-20 10:00"))
    letter = _letter(encode_event(body))
    [problem] = identity_problems(letter, body)
    assert problem.field == "venue_id"
    assert "is NODE-53c9d4, but the event came on " + SUBJECT in problem.reason

    fixed = f.recheck_failed("LY-FM-001", "I-1", f.at("2023-03-20 10:00"), event_id=body.event_id)
    assert identity_problems(letter, fixed) == []


def test_a_replacement_keeps_the_event_id_when_the_original_had_one() -> None:
    body = f.recheck_failed("LY-FM-001", "I-1", f.at("2023-03-20 10:00"))
    other = f.recheck_failed("LY-FM-001", "I-1", f.at("2023-03-20 10:00"))
    assert [p.field for p in identity_problems(_letter(encode_event(body)), other)] == ["event_id"]
    # Unreadable originals have no event_id to keep; intake ones have no subject.
    assert identity_problems(_letter(b"{not json", subject=None), other) == []
    assert original_event_id(_letter(orjson.dumps({"event_id": "oops"}))) is None


def test_venue_mismatch_wants_the_issues_venue() -> None:
    wrong = f.recheck_passed("LY-FM-002", "I-1", f.at("2023-03-25 10:00"))
    letter = _letter(
        encode_event(wrong), wrong.subject, kind="venue_mismatch", **{ISSUE_VENUE: "LY-FM-001"}
    )
    [problem] = identity_problems(letter, wrong)
    assert (problem.field, problem.reason.split(";")[0]) == (
        "venue_id",
        "is LY-FM-002, but the issue belongs to venue LY-FM-001",
    )
    right = f.recheck_passed("LY-FM-001", "I-1", f.at("2023-03-25 10:00"), event_id=wrong.event_id)
    assert identity_problems(letter, right) == []


def test_the_acknowledged_message_must_be_the_replacement_on_its_subject() -> None:
    ev = f.recheck_failed("LY-FM-001", "I-1", f.at("2023-03-20 10:00"))
    letter = _letter(encode_event(ev))
    chosen = Candidate(ev, encode_event(ev))
    assert replay_msg_id(letter) == "replay:projector:3"

    def at(seq: int, subject: str = SUBJECT, data: bytes = chosen.payload) -> StoredMessage:
        return StoredMessage(seq, subject, data, {})

    assert stored_problem(letter, chosen, at(12)) is None
    original = stored_problem(letter, chosen, at(7))
    assert original is not None and "the original dead-lettered message" in original
    elsewhere = stored_problem(letter, chosen, at(12, subject="cw.events.320703.X.RecheckFailed"))
    assert elsewhere is not None and "not on the event's subject" in elsewhere
    earlier = stored_problem(letter, chosen, at(12, data=b"{}"))
    assert earlier is not None and "an earlier replay of this dead letter with other" in earlier
    assert stored_problem(letter, chosen, None) is not None


def test_an_intake_replacement_stays_in_the_district_whose_publisher_sent_the_line() -> None:
    body = f.recheck_failed("LY-FM-001", "I-1", f.at("2023-03-20 10:00"))
    payload = encode_event(body)
    headers = dead_letter_headers(stage="intake", reason="test", field="(event)", payload=payload)
    elsewhere = body.model_copy(update={"district": "110101"})
    for subject, problems in (
        ("cw.dlq.intake.320703", []),
        ("cw.dlq.intake.110101", ["district"]),
        ("cw.dlq.intake.unknown", []),
        ("cw.dlq.intake", []),  # an older dead letter: no district to hold it to
    ):
        letter = DeadLetter.from_message(3, subject, payload, headers)
        assert letter.stage == "intake"
        assert [p.field for p in identity_problems(letter, body)] == problems
    sent_by_320703 = DeadLetter.from_message(3, "cw.dlq.intake.320703", payload, headers)
    [problem] = identity_problems(sent_by_320703, elsewhere)
    assert "district 320703's publisher sent the line" in problem.reason


def test_a_recorded_action_says_when_on_the_campaigns_clock() -> None:
    action = Action(stage="intake", dead_letter_seq=7, original_stream_seq=None,
                    action="deleted", event_id=None, event_stream_seq=None, reason="a test line",
                    acted_at=datetime(2026, 11, 25, 7, 58, 12, tzinfo=UTC))  # fmt: skip
    assert action.describe(ZoneInfo("Asia/Shanghai")) == (
        "recorded as deleted at 2026-11-25 15:58:12 +08:00 (a test line)"
    )
