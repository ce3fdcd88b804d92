"""``cw dlq replay | delete`` against real NATS and PostgreSQL, with the real projector.

The rule under test: a dead letter is removed only when its event is in ``CW_EVENTS`` on the
right subject and will be, or was, projected; and every removal is recorded once in
``cw.dead_letter_actions``.
"""

from __future__ import annotations

import argparse
import io
import re
import uuid
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from rich.console import Console

from contracts import Event, encode_event
from services.common.deadletters import ISSUE_VENUE, DeadLetter, dead_letter_headers
from services.common.streams import EVENTS_STREAM, dead_letter_subject
from services.deadletters.adapters.jetstream import DeadLetterStore
from services.deadletters.adapters.postgres import ActionLog
from services.deadletters.domain.rules import Action
from services.deadletters.entrypoints.cli import (
    delete_command,
    register,
    replay_command,
    show_command,
)
from services.intake.entrypoints.cli import publish_command
from services.projector.bootstrap import audit
from tests import factories as f
from tests.integration.conftest import Harness, audits_clean

pytestmark = pytest.mark.integration

NODE_SUBJECT = "cw.events.320703.LY-FM-001.RecheckFailed"
ACTIONS = (
    "SELECT stage, dead_letter_seq, original_stream_seq, action, event_id::text AS event_id, "
    "event_stream_seq, reason FROM cw.dead_letter_actions ORDER BY id"
)


def _console() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, width=400), buffer


async def _replay(
    h: Harness, seq: int, fixed: bytes | None = None, *, force: bool = False
) -> tuple[int, str]:
    console, out = _console()
    code = await replay_command(
        h.settings.nats_url,
        h.settings.database_url,
        [seq],
        fixed=fixed,
        force=force,
        console=console,
    )
    return code, out.getvalue()


async def _delete(h: Harness, seq: int, reason: str) -> tuple[int, str]:
    console, out = _console()
    code = await delete_command(
        h.settings.nats_url, h.settings.database_url, [seq], reason=reason, console=console
    )
    return code, out.getvalue()


async def _dead_letter_seqs(h: Harness, stage: str | None = None) -> list[int]:
    letters = await DeadLetterStore(h.nc.jetstream()).list(stage=stage, limit=100)
    return [letter.seq for letter in letters]


async def _by_hand(
    h: Harness,
    payload: bytes,
    *,
    subject: str,
    stream_seq: int,
    kind: str | None = None,
    extra: Mapping[str, str] | None = None,
) -> int:
    """A projector dead letter written directly, as the projector would write it."""
    headers = dead_letter_headers(
        stage="projector",
        reason="rejected in a test",
        field="(event)",
        payload=payload,
        subject=subject,
        stream_seq=stream_seq,
        kind=kind,
        extra=extra,
    )
    ack = await h.nc.jetstream().publish(dead_letter_subject("projector"), payload, headers=headers)
    return int(ack.seq)


def _body(ev: Event, **changes: Any) -> dict[str, Any]:
    obj: dict[str, Any] = orjson.loads(encode_event(ev))
    obj.update(changes)
    return obj


async def _venue_with_issue(h: Harness, venue_id: str, issue_id: str) -> None:
    await h.publish(
        [
            f.venue(venue_id, f.at("2023-03-01 09:00")),
            f.issue(venue_id, issue_id, f.at("2023-03-15 10:00")),
        ]
    )


async def test_node_event_on_the_wrong_subject_is_refused_as_is_and_replayed_fixed(
    harness: Harness,
) -> None:
    h = harness
    await _venue_with_issue(h, "LY-FM-001", "I-NODE-1")
    # Node published a RecheckFailed for LY-FM-001's issue on LY-FM-001's subject, but its body
    # names another venue; Nats-Msg-Id is the event_id, as every publisher sets it.
    node = f.recheck_failed("NODE-53c9d4", "I-NODE-1", f.at("2023-03-20 10:00"))
    js = h.nc.jetstream()
    original = await js.publish(
        NODE_SUBJECT, encode_event(node), headers={"Nats-Msg-Id": str(node.event_id)}
    )
    await h.project()
    [seq] = await _dead_letter_seqs(h, "projector")
    before = await h.last_seq()

    console, out = _console()
    assert await show_command(h.settings.nats_url, seq, console=console) == 0
    assert "now:         valid, but not a replacement: venue_id: is NODE-53c9d4" in out.getvalue()

    # As it is: the body disagrees with the subject NATS authorised; the subject wins.
    code, text = await _replay(h, seq)
    assert code == 1, text
    assert (
        "venue_id: is NODE-53c9d4, but the event came on "
        "cw.events.320703.LY-FM-001.RecheckFailed (venue LY-FM-001)" in text
    )
    assert await h.last_seq() == before
    assert await _dead_letter_seqs(h) == [seq]

    # Fixed to the subject's venue: published as a new message (not deduplicated onto the
    # original by its event_id), projected, recorded, and the dead letter removed.
    fixed = orjson.dumps(_body(node, venue_id="LY-FM-001"))
    code, text = await _replay(h, seq, fixed)
    assert code == 0, text
    new_seq = await h.last_seq()
    assert new_seq == before + 1 != original.seq
    assert f"published to CW_EVENTS as seq {new_seq} on {NODE_SUBJECT}" in text
    assert "recorded in cw.dead_letter_actions; removed from CW_DEAD_LETTERS" in text
    assert await _dead_letter_seqs(h) == []

    await h.project()
    archived = await h.rows(
        "SELECT stream_seq, subject FROM event_archive WHERE event_id = $1", node.event_id
    )
    assert archived == [{"stream_seq": new_seq, "subject": NODE_SUBJECT}]
    issue = await h.rows("SELECT recheck_failures FROM issue_status WHERE issue_id = 'I-NODE-1'")
    assert issue == [{"recheck_failures": 1}]
    assert await h.rows(ACTIONS) == [
        {
            "stage": "projector",
            "dead_letter_seq": seq,
            "original_stream_seq": original.seq,
            "action": "replayed",
            "event_id": str(node.event_id),
            "event_stream_seq": new_seq,
            "reason": "replayed with a fix",
        }
    ]

    # Twice is harmless: nothing published, nothing recorded again.
    code, text = await _replay(h, seq, fixed)
    assert code == 0, text
    assert f"no longer in CW_DEAD_LETTERS: recorded as replayed as seq {new_seq}" in text
    # When, on the campaign's clock with its offset (the row holds the instant).
    (row,) = await h.rows("SELECT acted_at FROM cw.dead_letter_actions")
    acted = row["acted_at"]
    assert isinstance(acted, datetime)
    local = acted.astimezone(ZoneInfo("Asia/Shanghai"))
    assert f" at {local:%Y-%m-%d %H:%M:%S} +08:00" in text
    assert await h.last_seq() == new_seq
    assert len(await h.rows(ACTIONS)) == 1


async def test_another_districts_event_is_refused_unless_forced(harness: Harness) -> None:
    h = harness
    ours = f.recheck_failed("NODE-53c9d4", "I-7", f.at("2023-03-20 10:00"))
    seq = await _by_hand(h, encode_event(ours), subject=NODE_SUBJECT, stream_seq=7)
    other = f.recheck_failed("SZ-FM-009", "I-7", f.at("2023-03-20 10:00"), district="320706")
    before = await h.last_seq()

    code, text = await _replay(h, seq, encode_event(other))
    assert code == 1, text
    assert f"event_id: is {other.event_id}, but the dead letter's event has {ours.event_id}" in text
    assert "district: is 320706, but the event came on " + NODE_SUBJECT in text
    assert "venue_id: is SZ-FM-009" in text
    assert "pass --force to publish it anyway" in text
    assert await h.last_seq() == before
    assert await _dead_letter_seqs(h) == [seq]

    code, text = await _replay(h, seq, encode_event(other), force=True)
    assert code == 0, text
    assert f"published to CW_EVENTS as seq {before + 1} on {other.subject}" in text
    stored = await h.nc.jetstream().get_msg(EVENTS_STREAM, before + 1)
    assert stored.subject == other.subject == "cw.events.320706.SZ-FM-009.RecheckFailed"
    assert await _dead_letter_seqs(h) == []
    [action] = await h.rows(ACTIONS)
    assert action["event_id"] == str(other.event_id)
    assert str(action["reason"]).startswith("replayed with a fix; --force past: event_id: ")


async def test_an_intake_dead_letter_is_replayed_and_projected(
    harness: Harness, tmp_path: Path
) -> None:
    h = harness
    good = f.venue("LY-FM-005", f.at("2023-03-01 09:00"))
    naive = _body(good, occurred_at="2023-03-01T09:00:00")
    path = tmp_path / "district.jsonl"
    path.write_bytes(orjson.dumps(naive) + b"\n")
    code = await publish_command(
        h.settings.nats_url, str(path), console=_console()[0], progress=False
    )
    assert code == 1
    [seq] = await _dead_letter_seqs(h, "intake")

    code, text = await _replay(h, seq, encode_event(good))
    assert code == 0, text
    assert f"published to CW_EVENTS as seq 1 on {good.subject}" in text
    await h.project()
    assert await h.rows("SELECT venue_id FROM venues") == [{"venue_id": "LY-FM-005"}]
    [action] = await h.rows(ACTIONS)
    assert (action["stage"], action["original_stream_seq"], action["event_stream_seq"]) == (
        "intake",
        None,
        1,
    )


async def test_an_event_already_projected_with_the_same_content_is_removed_without_publishing(
    harness: Harness,
) -> None:
    h = harness
    ev = f.venue("LY-FM-006", f.at("2023-03-01 09:00"))
    await h.publish([ev])
    await h.project()
    # The same event, formatted otherwise: decoded events are compared, not bytes.
    indented = orjson.dumps(orjson.loads(encode_event(ev)), option=orjson.OPT_INDENT_2)
    seq = await _by_hand(h, indented, subject=ev.subject, stream_seq=1)

    code, text = await _replay(h, seq)
    assert code == 0, text
    assert f"already projected: CW_EVENTS seq 1 on {ev.subject} is the same event" in text
    assert "nothing published" in text
    assert await h.last_seq() == 1
    assert await _dead_letter_seqs(h) == []
    [action] = await h.rows(ACTIONS)
    assert (action["action"], action["event_stream_seq"], action["reason"]) == (
        "replayed",
        1,
        "already projected",
    )


async def test_an_event_id_already_projected_with_other_content_is_kept(
    harness: Harness,
) -> None:
    h = harness
    ev = f.venue("LY-FM-007", f.at("2023-03-01 09:00"))
    await h.publish([ev])
    await h.project()
    renamed = orjson.dumps(_body(ev, data={**_body(ev)["data"], "name": "改名的场所"}))
    seq = await _by_hand(h, renamed, subject=ev.subject, stream_seq=2)

    code, text = await _replay(h, seq)
    assert code == 1, text
    assert f"kept: event_id {ev.event_id} is already projected with other content" in text
    assert "as event_id_reused" in text
    assert f"cw dlq delete {seq} --reason TEXT" in text
    assert await h.last_seq() == 1
    assert await _dead_letter_seqs(h) == [seq]
    assert await h.rows(ACTIONS) == []


async def test_venue_mismatch_is_replayed_only_to_the_issues_venue(harness: Harness) -> None:
    h = harness
    await _venue_with_issue(h, "LY-FM-001", "I-VM-1")
    await h.project()
    wrong = f.recheck_passed("LY-FM-002", "I-VM-1", f.at("2023-03-25 10:00"))
    seq = await _by_hand(
        h,
        encode_event(wrong),
        subject=wrong.subject,
        stream_seq=99,
        kind="venue_mismatch",
        extra={ISSUE_VENUE: "LY-FM-001"},
    )

    code, text = await _replay(h, seq)
    assert code == 1, text
    assert "venue_id: is LY-FM-002, but the issue belongs to venue LY-FM-001" in text

    fixed = orjson.dumps(_body(wrong, venue_id="LY-FM-001"))
    code, text = await _replay(h, seq, fixed)
    assert code == 0, text
    assert "on cw.events.320703.LY-FM-001.RecheckPassed" in text
    await h.project()
    closed = await h.rows("SELECT status FROM issue_status WHERE issue_id = 'I-VM-1'")
    assert closed == [{"status": "closed"}]
    assert await _dead_letter_seqs(h) == []


async def test_delete_records_the_reason_then_removes_a_malformed_dead_letter(
    harness: Harness, tmp_path: Path
) -> None:
    h = harness
    path = tmp_path / "broken.jsonl"
    path.write_bytes(b'{"event_id": "not even json\n')
    await publish_command(h.settings.nats_url, str(path), console=_console()[0], progress=False)
    [seq] = await _dead_letter_seqs(h, "intake")

    code, text = await _delete(h, seq, "a truncated test line from the district's export")
    assert code == 0, text
    assert f"dead letter {seq}: deleted; recorded in cw.dead_letter_actions" in text
    assert await _dead_letter_seqs(h) == []
    assert await h.rows(ACTIONS) == [
        {
            "stage": "intake",
            "dead_letter_seq": seq,
            "original_stream_seq": None,
            "action": "deleted",
            "event_id": None,
            "event_stream_seq": None,
            "reason": "a truncated test line from the district's export",
        }
    ]

    code, text = await _delete(h, seq, "again")
    assert code == 0, text
    assert "no longer in CW_DEAD_LETTERS: recorded as deleted at " in text
    assert re.search(r"recorded as deleted at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+08:00 \(", text)
    assert len(await h.rows(ACTIONS)) == 1

    code, text = await _delete(h, 9999, "no such")
    assert code == 1
    assert text == (
        "dead letter 9999: not in CW_DEAD_LETTERS, and no replay or delete of it is recorded\n"
    )


async def test_a_malformed_message_the_projector_dead_lettered_is_deleted_and_audits_clean(
    harness: Harness,
) -> None:
    h = harness
    await h.publish([f.venue("LY-FM-001", f.at("2023-02-03 09:00"))])
    await h.publish_raw("cw.events.320703.LY-FM-001.IssueFound", b'{"event_id": "cut sho')
    await h.publish([f.inspection("LY-FM-001", f.at("2023-02-13 08:45"))])
    await h.project()
    [seq] = await _dead_letter_seqs(h, "projector")
    letter = await DeadLetterStore(h.nc.jetstream()).get(seq)
    assert letter is not None and letter.kind == "malformed_json"

    # Kept as a dead letter, the message is accounted for; so it must be once deleted too.
    await audits_clean(h.settings)
    code, text = await _delete(h, seq, "a cut line from a test upload")

    assert code == 0, text
    assert text == (
        f"dead letter {seq}: deleted; recorded in cw.dead_letter_actions; "
        "removed from CW_DEAD_LETTERS\n"
    )
    assert await _dead_letter_seqs(h) == []
    assert await h.rows(ACTIONS) == [
        {
            "stage": "projector",
            "dead_letter_seq": seq,
            "original_stream_seq": 2,
            "action": "deleted",
            "event_id": None,
            "event_stream_seq": None,
            "reason": "a cut line from a test upload",
        }
    ]
    await audits_clean(h.settings)
    report = await audit(h.settings)
    assert (report.checked, report.deleted, report.still_dead_letters) == (3, 1, 0)


async def test_a_crash_between_recording_and_removing_is_finished_without_a_second_row(
    harness: Harness,
) -> None:
    h = harness
    ev = f.venue("LY-FM-008", f.at("2023-03-01 09:00"))
    first = await _by_hand(h, encode_event(ev), subject=ev.subject, stream_seq=5)
    second = await _by_hand(h, encode_event(ev), subject=ev.subject, stream_seq=6)
    store = DeadLetterStore(h.nc.jetstream())
    log = ActionLog(h.db)
    for seq, action in ((first, "replayed"), (second, "deleted")):
        letter = await store.get(seq)
        assert letter is not None
        # What the first command recorded before it died.
        await log.record(letter, _before_the_crash(letter, action))

    # A delete of a dead letter recorded as replayed keeps the first record.
    code, text = await _delete(h, first, "cleaning up")
    assert code == 0, text
    assert "already recorded as replayed" in text and "(no second record)" in text
    # A replay of one recorded as deleted does not publish it.
    code, text = await _replay(h, second)
    assert code == 1, text
    assert "recorded as deleted" in text and "not replayed" in text
    assert await h.last_seq() == 0
    assert await _dead_letter_seqs(h) == []
    rows = await h.rows(ACTIONS)
    assert [(r["dead_letter_seq"], r["action"]) for r in rows] == [
        (first, "replayed"),
        (second, "deleted"),
    ]


def _before_the_crash(letter: DeadLetter, action: str) -> Action:
    replayed = action == "replayed"
    return Action(
        stage=letter.stage,
        dead_letter_seq=letter.seq,
        original_stream_seq=letter.original_stream_seq,
        action="replayed" if replayed else "deleted",
        event_id=uuid.uuid4() if replayed else None,
        event_stream_seq=1 if replayed else None,
        reason="before the crash",
    )


def test_delete_requires_a_reason(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="cw")
    register(parser.add_subparsers(dest="command", required=True))
    for argv in (["dlq", "delete", "3"], ["dlq", "delete", "3", "--reason", "   "]):
        with pytest.raises(SystemExit):
            parser.parse_args(argv)
    assert "say why the dead letter is deleted" in capsys.readouterr().err
    args = parser.parse_args(["dlq", "delete", "3", "4", "--reason", " a  test\n message "])
    assert (args.seq, args.reason) == ([3, 4], "a test message")
