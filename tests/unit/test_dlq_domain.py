"""The pure rules of ``cw dlq``: what a dead letter is and whose (from its subject), what
replaces its event, and what was stored."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import orjson
import pytest

from contracts import encode_event
from services.common.deadletters import (
    ISSUE_VENUE,
    MSG_ID,
    STAGE,
    STREAM_SEQ,
    TARGET,
    DeadLetter,
    dead_letter_headers,
)
from services.common.deadletters import SUBJECT as SUBJECT_HEADER
from services.deadletters.domain.rules import (
    Action,
    Candidate,
    StoredMessage,
    claim_problems,
    identity_problems,
    intake_district_problem,
    original_event_id,
    replay_msg_id,
    stored_problem,
    subject_place,
    whose,
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
    where = "cw.dlq.projector" if subject else "cw.dlq.intake.320703"
    return DeadLetter.from_message(3, where, payload, headers)


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


def _as_the_projector_writes(payload: bytes, **extra: str) -> dict[str, str]:
    return dead_letter_headers(
        stage="projector",
        reason="test",
        field="(event)",
        payload=payload,
        subject="cw.events.320706.SZ-FM-009.RecheckFailed",
        stream_seq=41,
        kind="venue_mismatch",
        extra=extra,
    )


def test_a_letter_is_what_its_subject_says_whatever_its_headers_claim() -> None:
    body = f.recheck_failed("SZ-FM-009", "I-1", f.at("2023-03-20 10:00"), district="320706")
    payload = encode_event(body)
    headers = _as_the_projector_writes(payload, **{ISSUE_VENUE: "SZ-FM-001", TARGET: "robot"})

    forged = DeadLetter.from_message(5, "cw.dlq.intake.320703", payload, headers)
    assert (forged.stage, forged.district) == ("intake", "320703")
    assert (forged.original_subject, forged.original_stream_seq) == (None, None)
    assert forged.claims == {
        STAGE: "projector",
        SUBJECT_HEADER: "cw.events.320706.SZ-FM-009.RecheckFailed",
        STREAM_SEQ: "41",
        ISSUE_VENUE: "SZ-FM-001",
        TARGET: "robot",
    }
    assert whose(forged) == "district 320703's intake letter"
    assert replay_msg_id(forged) == "replay:intake:5"

    # The services' own subjects: only their users write them, so their headers are believed.
    genuine = DeadLetter.from_message(5, "cw.dlq.projector", payload, headers)
    assert (genuine.stage, genuine.district, genuine.claims) == ("projector", None, {})
    assert genuine.original_subject == "cw.events.320706.SZ-FM-009.RecheckFailed"
    assert genuine.original_stream_seq == 41
    assert claim_problems(genuine) == []
    # ... but not about their stage: that is the subject's too.
    misfiled = DeadLetter.from_message(5, "cw.dlq.notifier", payload, headers)
    assert (misfiled.stage, misfiled.claims) == ("notifier", {STAGE: "projector"})
    assert misfiled.original_stream_seq == 41


def test_each_false_claim_is_named_with_why_it_is_not_believed() -> None:
    payload = b"{}"
    headers = _as_the_projector_writes(payload, **{ISSUE_VENUE: "SZ-FM-001", TARGET: "robot"})
    forged = DeadLetter.from_message(5, "cw.dlq.intake.320703", payload, headers)
    said = {p.field: p.reason for p in claim_problems(forged)}
    assert said == {
        STAGE: "claims projector, but the letter was written to cw.dlq.intake.320703, so it is "
        "district 320703's intake letter",
        SUBJECT_HEADER: "claims cw.events.320706.SZ-FM-009.RecheckFailed, but an intake letter "
        "holds a line a publisher sent, never a stream message",
        STREAM_SEQ: "claims 41, but an intake letter holds a line a publisher sent, never a "
        "stream message",
        ISSUE_VENUE: "claims SZ-FM-001, but only the projector's letters name the venue of an "
        "issue",
        TARGET: "claims robot, but only the notifier's letters name a target that refused",
    }
    older = DeadLetter.from_message(5, "cw.dlq.intake", payload, {STAGE: "notifier"})
    [problem] = claim_problems(older)
    assert problem.reason.endswith("written to cw.dlq.intake, so it is an intake letter")
    misfiled = DeadLetter.from_message(5, "cw.dlq.notifier", payload, {STAGE: "projector"})
    [problem] = claim_problems(misfiled)
    assert problem.reason.endswith("so it is the notifier's letter")
    # What cw publish writes claims nothing.
    plain = dead_letter_headers(stage="intake", reason="r", field="f", payload=payload, line=2)
    assert claim_problems(DeadLetter.from_message(5, "cw.dlq.intake.320703", payload, plain)) == []


def test_an_intake_letters_district_is_its_subjects_not_its_headers() -> None:
    body = f.recheck_failed("SZ-FM-009", "I-1", f.at("2023-03-20 10:00"), district="320706")
    payload = encode_event(body)
    headers = _as_the_projector_writes(payload, **{ISSUE_VENUE: "SZ-FM-001"})
    forged = DeadLetter.from_message(5, "cw.dlq.intake.320703", payload, headers)
    problem = intake_district_problem(forged, body)
    assert problem is not None and problem.field == "district"
    assert problem.reason.startswith("is 320706, but district 320703's publisher sent the line")
    assert [p.field for p in identity_problems(forged, body)] == ["district"]
    # The issue's venue it claims is no rule for its replacement either.
    ours = body.model_copy(update={"district": "320703"})
    assert intake_district_problem(forged, ours) is None
    assert identity_problems(forged, ours) == []
    # A projector's letter's district is its event subject's: --force may still pass it.
    genuine = DeadLetter.from_message(5, "cw.dlq.projector", payload, headers)
    assert intake_district_problem(genuine, ours) is None
    assert [p.field for p in identity_problems(genuine, ours)] == ["district", "venue_id"]


def test_a_services_letter_id_is_sealed_with_the_deployments_key() -> None:
    def msg_id(key: bytes, seq: int = 7, target: str | None = None) -> str:
        headers = dead_letter_headers(
            stage="projector" if target is None else "notifier",
            reason="r",
            field="f",
            payload=b"{}",
            subject=SUBJECT,
            stream_seq=seq,
            extra=None if target is None else {TARGET: target},
            key=key,
        )
        return headers[MSG_ID]

    ours = msg_id(b"k1")
    # The same letter again (a crash before its batch committed): the same id, stored once.
    assert ours == msg_id(b"k1")
    # Not the id a district could write first: it needs the key, which only the services read.
    seal = hmac.new(b"k1", b"projector:7", hashlib.sha256).hexdigest()[:32]
    assert ours == f"projector:7:{seal}"
    assert ours != msg_id(b"k2")
    assert ours != msg_id(b"k1", seq=8)
    # One reminder refused by two targets: a letter each, each sealed.
    webhook, robot = msg_id(b"k1", target="webhook"), msg_id(b"k1", target="robot")
    assert webhook.startswith("notifier:7:webhook:") and robot.startswith("notifier:7:robot:")
    assert webhook != robot
    # The intake (cw publish, no stream message, no key) keeps its id by payload.
    intake = dead_letter_headers(stage="intake", reason="r", field="f", payload=b"{}")[MSG_ID]
    assert intake == "intake:" + hashlib.sha256(b"{}").hexdigest()[:32]


def test_a_recorded_action_says_when_on_the_campaigns_clock() -> None:
    action = Action(stage="intake", dead_letter_seq=7, original_stream_seq=None,
                    action="deleted", event_id=None, event_stream_seq=None, reason="a test line",
                    acted_at=datetime(2026, 11, 25, 7, 58, 12, tzinfo=UTC))  # fmt: skip
    assert action.describe(ZoneInfo("Asia/Shanghai")) == (
        "recorded as deleted at 2026-11-25 15:58:12 +08:00 (a test line)"
    )
