"""Hostile input through the store and the commands, against the run's NATS and PostgreSQL.

- Every event drawn from the contract's JSON Schemas is projected by the running projector
  (its real unit of work on PostgreSQL): archived, or refused by a rule of the domain; none is
  ``unstorable`` and none stalls it.
- The fault suite's hostile messages, published straight to ``cw.events.>`` past the intake, are
  each projected or dead-lettered with the field and kind ``decode_delivery`` gives, and
  ``cw audit`` is clean.
- ``cw dlq list``, ``show`` and ``replay`` and ``cw rebuild`` take those dead letters and that
  stream, and ``cw audit`` stays clean; a count PostgreSQL cannot hold is ``unstorable``.
- ``cw publish`` on a file of them exits 0 or 1 with its report, never a traceback, and every
  rejected line is in the intake's dead letters with its field.
- The reminders service, the second reader of ``CW_EVENTS``, takes the same without stalling.

``CW_HOSTILE_EXAMPLES`` and ``CW_HOSTILE_COUNT`` make a deeper run (see the unit tier's
``test_hostile_input.py``).
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from rich.console import Console

from contracts import decode_event
from services.common.campaign import load_campaign
from services.common.streams import DEAD_LETTERS_STREAM
from services.consumer.decoding import decode_delivery
from services.consumer.model import Delivery, Rejection
from services.deadletters.entrypoints.cli import list_command, replay_command, show_command
from services.intake.adapters.files import read_lines
from services.intake.domain.lines import Rejected, judge
from services.projector.adapters.metrics import ProjectorMetrics
from services.projector.bootstrap import rebuild
from services.reminders.adapters.metrics import ReminderMetrics
from tests import factories as f
from tests.integration.conftest import Harness, audits_clean
from tests.integration.test_projector_refusals import dead_letters, outcomes
from tests.integration.test_publish import stored
from tests.support.hostile import hostile_cases
from tests.support.processes import ROOT, cw_env
from tests.support.reminders import reminders_in_process
from tests.support.schema_events import campaign_events, hostile_count, hostile_settings
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

DOMAIN_REFUSALS = {"venue_mismatch", "event_id_reused"}
"""Why a valid event may still be refused: rules of the read model, not of storage."""


def drawn_events(examples: int) -> list[dict[str, Any]]:
    """Events drawn from the schemas, each with an event_id of its own (a drawn id repeats)."""
    events: list[dict[str, Any]] = []

    @hostile_settings(examples)
    @given(campaign_events())
    def draw(obj: dict[str, Any]) -> None:
        events.append({**obj, "event_id": str(uuid.uuid4())})

    draw()
    return events


async def archived_seqs(harness: Harness) -> set[int]:
    rows = await harness.rows("SELECT stream_seq FROM event_archive")
    return {int(str(r["stream_seq"])) for r in rows}


async def test_every_event_drawn_from_the_schema_is_projected(harness: Harness) -> None:
    events = await asyncio.to_thread(drawn_events, 150)
    js = harness.nc.jetstream()
    for obj in events:
        event = decode_event(_json(obj))
        await js.publish(event.subject, _json(obj), headers={"Nats-Msg-Id": obj["event_id"]})
    await harness.project()

    archived = await archived_seqs(harness)
    refused = {seq: reason for seq, (_, reason) in (await outcomes(harness)).items()}
    assert set(range(1, len(events) + 1)) == archived | set(refused)
    # Drawn ids are short and repeat across venues: a domain rule may refuse a few, storage none.
    assert set(refused.values()) <= DOMAIN_REFUSALS, refused
    assert len(archived) > len(events) * 0.8
    await audits_clean(harness.settings)


async def test_hostile_messages_sent_past_the_intake_are_projected_or_dead_lettered(
    harness: Harness,
) -> None:
    cases = hostile_cases(hostile_count(400), seed=20261125)
    for case in cases:
        await harness.publish_raw(case.subject, case.payload)
    campaign = load_campaign()
    await harness.project()

    archived = await archived_seqs(harness)
    results = await outcomes(harness)
    letters = {d.original_stream_seq: d for d in await dead_letters(harness)}
    for seq, case in enumerate(cases, start=1):
        expected = decode_delivery(Delivery(seq, case.subject, case.payload, None), campaign)
        what = f"message {seq} ({case.mutation}): {case.payload[:200]!r}"
        if isinstance(expected, Rejection):
            letter = letters.get(seq)
            assert letter is not None, f"no dead letter for {what}"
            assert (letter.field, letter.kind) == (expected.field, expected.kind), what
            assert letter.reason, what
            assert results.get(seq) == ("dead_lettered", expected.kind), what
        elif seq not in archived:
            outcome, reason = results[seq]
            assert (outcome, reason in DOMAIN_REFUSALS) == ("dead_lettered", True), what
    assert len(archived) >= len(cases) // 5
    await audits_clean(harness.settings)
    await _operators_read(harness, len(letters))

    await harness.project()  # what was put back
    await audits_clean(harness.settings)

    # cw rebuild replays the same stream, hostile messages and all, into the same read model.
    archived = await archived_seqs(harness)
    issues = await harness.rows("SELECT * FROM issue_status ORDER BY district, issue_id")
    await rebuild(harness.settings, ProjectorMetrics())
    assert await archived_seqs(harness) == archived
    assert await harness.rows("SELECT * FROM issue_status ORDER BY district, issue_id") == issues
    await audits_clean(harness.settings)


async def _operators_read(harness: Harness, n: int) -> None:
    """``cw dlq list`` (piped and ``--json``) and ``cw dlq show`` read every hostile dead letter
    without a crash: one line per letter, whatever its payload or reason holds."""
    url = harness.settings.nats_url
    out = io.StringIO()
    assert await list_command(url, stage=None, limit=n, as_json=False, console=_pipe(out)) == 0
    lines = out.getvalue().splitlines()
    assert len(lines) == n + 2, lines[:5]  # the counts, the heading, a line each
    assert all(len(line.split("\t")) == 5 for line in lines[1:]), lines
    out = io.StringIO()
    assert await list_command(url, stage=None, limit=n, as_json=True, console=_pipe(out)) == 0
    assert len([json.loads(line) for line in out.getvalue().splitlines()]) == n
    letters = await dead_letters(harness)
    for letter in letters:
        out = io.StringIO()
        assert await show_command(url, letter.seq, console=_pipe(out)) == 0
        assert f"field:       {letter.field}" in out.getvalue()
    # Put back as they are: each one is kept, except an event that is valid and names the
    # district and venue of the subject it came on (only its type's token was wrong).
    out = io.StringIO()
    db = harness.settings.database_url
    assert (
        await replay_command(url, db, [d.seq for d in letters], fixed=None, console=_pipe(out)) == 1
    )
    assert len(out.getvalue().splitlines()) == len(letters), out.getvalue()
    kept = {m.seq for m in await stored(harness.nc, DEAD_LETTERS_STREAM)}
    for letter in letters:
        if letter.seq not in kept:
            event = decode_event(letter.payload)
            named = (letter.original_subject or "").split(".")[2:4]
            assert [event.district, event.venue_id] == named, letter


def _pipe(out: io.StringIO) -> Console:
    return Console(file=out, width=120)


@pytest.mark.parametrize(
    ("end", "stdin"), [(b"\n", False), (b"\r\n", False), (b"\n", True)], ids=["LF", "CRLF", "stdin"]
)
async def test_cw_publish_on_hostile_lines_reports_and_dead_letters_every_rejected_line(
    harness: Harness, tmp_path: Path, end: bytes, stdin: bool
) -> None:
    cases = hostile_cases(hostile_count(300), seed=7)
    path = tmp_path / "hostile.jsonl"
    path.write_bytes(end.join(c.payload for c in cases) + end)
    with path.open("rb") as lines:
        verdicts = [judge(line) for line in read_lines(lines)]
    rejected = [v for v in verdicts if isinstance(v, Rejected)]
    assert rejected

    env = cw_env(harness.settings.nats_url, harness.settings.database_url)
    args = ["-m", "services.cli", "publish", "-" if stdin else str(path), "--no-progress"]
    ran = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, *args],
        input=path.read_bytes() if stdin else None,
        env=env,
        cwd=ROOT,
        capture_output=True,
        timeout=120,
        check=False,
    )
    # Bytes: the report quotes what the lines hold, which need not be UTF-8.
    done = subprocess.CompletedProcess(
        ran.args, ran.returncode, ran.stdout.decode(errors="replace"), ran.stderr.decode()
    )

    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Traceback" not in output
    assert f"; {len(rejected)} lines rejected" in done.stdout
    for r in rejected:
        assert f"line {r.line}: rejected: {r.field}: " in done.stdout
    # A dead letter is kept once per payload (its id is the payload's digest): the first line.
    first: dict[bytes, Rejected] = {}
    for r in rejected:
        first.setdefault(r.payload, r)
    letters = [d for d in await dead_letters(harness) if d.stage == "intake"]
    assert sorted((d.line, d.field) for d in letters) == sorted(
        (r.line, r.field) for r in first.values()
    )
    assert all(d.field and d.reason.startswith(f"{d.field}: ") for d in letters)
    # What the intake let through, the projector takes whole.
    await harness.project()
    await audits_clean(harness.settings)


def _json(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode()


async def test_a_count_postgresql_cannot_hold_is_an_unstorable_dead_letter(
    harness: Harness,
) -> None:
    # Valid by the contract, one by one: 100,000 items an inspection. A district that sends
    # 21,475 of them for one venue and phase takes its integer sum past what PostgreSQL holds;
    # the sum stands here already near the end. That event is dead-lettered, the rest go on.
    venue, when = "LY-FM-001", f.at("2023-03-15 10:00")
    await harness.publish([f.inspection(venue, when, items_checked=100_000)])
    await harness.project()
    schema = await harness.db.fetchval("SELECT active_schema FROM cw.read_model_head")
    await harness.db.execute(
        f"UPDATE {schema}.venue_phase_counts SET items_checked = 2147483647 - 99999"
    )
    await harness.publish([
        f.inspection(venue, when, items_checked=100_000),
        f.inspection(venue, when, items_checked=3),
        f.issue(venue, "I1", when),
    ])  # fmt: skip
    await harness.project()

    letters = await dead_letters(harness)
    assert [(d.kind, d.original_stream_seq) for d in letters] == [("unstorable", 2)]
    assert "out of range" in letters[0].reason
    assert await archived_seqs(harness) == {1, 3, 4}
    await audits_clean(harness.settings)


async def test_cw_dlq_show_shows_a_depth_bomb_as_text(harness: Harness) -> None:
    # Nested 600 deep, orjson read it but would not write it indented: cw dlq show ended in a
    # traceback (TypeError: Recursion limit reached) on a dead letter any publisher can make.
    payload = b'{"event_type":"IssueFound","nest":' + b"[" * 600 + b"]" * 600 + b"}"
    await harness.publish_raw("cw.events.320703.LY-FM-001.IssueFound", payload)
    await harness.project()
    (letter,) = await dead_letters(harness)
    out = io.StringIO()
    assert await show_command(harness.settings.nats_url, letter.seq, console=_pipe(out)) == 0
    assert payload.decode() in out.getvalue().replace("\n", "")


REMINDERS_CHECKPOINT = "SELECT COALESCE(max(stream_seq), 0) FROM cw_reminders.checkpoint"


class Errors(logging.Handler):
    """The error records of a logger, whatever pytest's own log capture does."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


async def test_the_reminders_service_takes_drawn_and_hostile_messages_alike(
    harness: Harness,
) -> None:
    # The second reader of CW_EVENTS: its own store (timers from the issue lifecycle) holds
    # every drawn event, the widest offsets and the range's edges included, and passes the
    # rejections by without stalling (the projector is the one that dead-letters them).
    events = await asyncio.to_thread(drawn_events, 80)
    js = harness.nc.jetstream()
    for obj in events:
        event = decode_event(_json(obj))
        await js.publish(event.subject, _json(obj), headers={"Nats-Msg-Id": obj["event_id"]})
    for case in hostile_cases(hostile_count(200), seed=5):
        await harness.publish_raw(case.subject, case.payload)
    last = await harness.last_seq()
    metrics = ReminderMetrics()

    async def caught_up() -> bool:
        return int(await harness.db.fetchval(REMINDERS_CHECKPOINT)) >= last

    errors = Errors()
    logging.getLogger("cw.consumer").addHandler(errors)
    try:
        async with reminders_in_process(harness.settings, metrics) as task:
            await eventually(
                caught_up, within=60, what="the reminders reach the end", running=[task]
            )
    finally:
        logging.getLogger("cw.consumer").removeHandler(errors)
    assert [m for m in errors.messages if "cannot be stored" in m] == []
