"""``cw dlq`` on a nats-server with the shipped permissions: what a dead letter is, and whose,
comes from the subject NATS let its writer write, never from headers the writer chose.

District 320703's publisher may write ``cw.dlq.intake.320703`` and nothing else of
``CW_DEAD_LETTERS``; the services write their own stage's subject. So a letter on
``cw.dlq.intake.320703`` is district 320703's intake letter, whatever its headers say, and the
operator's replay of it publishes into district 320703 or nowhere.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import asyncpg
import nats
import orjson
import pytest
from rich.console import Console

from contracts import Event, encode_event
from services.common.connect import NatsAccess
from services.common.deadletters import TARGET, dead_letter_headers
from services.common.entrypoints import initialise
from services.common.settings import Settings
from services.common.streams import DEAD_LETTERS_STREAM, EVENTS_STREAM
from services.consumer.jetstream import DeadLetterPublisher, NatsConnection
from services.consumer.letter_key import DeadLetterKey
from services.consumer.model import Delivery
from services.deadletters.entrypoints.cli import (
    delete_command,
    list_command,
    replay_command,
    show_command,
)
from services.intake.entrypoints.cli import publish_command
from services.notifier.adapters.deadletters import RefusalsToDeadLetters
from services.notifier.domain.model import Pending, Refused
from services.notifier.domain.targets import Target
from services.permissions.domain.users import inbox_prefix
from tests import factories as f
from tests.integration.conftest import Harness, audits_clean
from tests.support.reminder_messages import reminder
from tests.support.reminder_messages import subject as reminder_subject
from tests.support.reminder_messages import wire as reminder_wire
from tests.support.secure_nats import DISTRICT, SecuredServer, Watched, secured_server, watched

pytestmark = pytest.mark.integration

OTHER = "320706"
FORGED_SUBJECT = f"cw.events.{OTHER}.SZ-FM-009.VenueRegistered"
ACTIONS = "SELECT stage, original_stream_seq, action FROM cw.dead_letter_actions ORDER BY id"


@pytest.fixture(scope="module")
def secured() -> Iterator[SecuredServer]:
    with secured_server() as server:
        yield server


@dataclass
class Stack:
    """The secured server with the streams and the read model; the operator, the projector
    and district 320703's publisher each as their own NATS user."""

    secured: SecuredServer
    operator: Settings
    projector: Harness
    """Runs the real projector as the ``projector`` user; reads as the operator."""
    publisher: Watched

    def district_publisher(self) -> NatsAccess:
        return NatsAccess(self.secured.url("publisher"), inbox_prefix=inbox_prefix(DISTRICT))

    async def letters(self) -> list[dict[str, object]]:
        """``cw dlq list --json`` as the operator."""
        console, out = _console()
        code = await list_command(
            self.operator.nats_url, stage=None, limit=50, as_json=True, console=console
        )
        assert code == 0, out.getvalue()
        return [orjson.loads(line) for line in out.getvalue().splitlines()]

    async def show(self, seq: int) -> str:
        console, out = _console()
        assert await show_command(self.operator.nats_url, seq, console=console) == 0
        return out.getvalue()

    async def replay(
        self, seq: int, fixed: bytes | None = None, *, force: bool = False
    ) -> tuple[int, str]:
        console, out = _console()
        code = await replay_command(
            self.operator.nats_url,
            self.operator.database_url,
            [seq],
            fixed=fixed,
            force=force,
            console=console,
        )
        return code, out.getvalue()

    async def events_in_stream(self) -> int:
        info = await self.projector.nc.jetstream().stream_info(EVENTS_STREAM)
        return int(info.state.messages)

    async def dead_letter_seqs(self) -> list[int]:
        return [int(str(row["seq"])) for row in await self.letters()]


@pytest.fixture
async def stack(secured: SecuredServer, database_url: str) -> AsyncIterator[Stack]:
    operator = Settings(nats_url=secured.url("operator"), database_url=database_url, metrics_port=0)
    projector = operator.model_copy(
        update={
            "nats_url": secured.url("projector"),
            "nats_inbox_prefix": inbox_prefix("projector"),
            "projector_fetch_wait": timedelta(milliseconds=200),
        }
    )
    operator_nc = await nats.connect(operator.nats_url)
    try:
        js = operator_nc.jetstream()
        for info in await js.streams_info():  # the server is the module's: start from nothing
            await js.delete_stream(info.config.name or "")
        await initialise(operator)  # cw init, as the operator: the streams and the read model
        db = await asyncpg.connect(database_url)
        try:
            async with watched(
                secured.url("publisher"), inbox_prefix=inbox_prefix(DISTRICT)
            ) as publisher:
                yield Stack(secured, operator, Harness(projector, operator_nc, db), publisher)
        finally:
            await db.close()
    finally:
        await operator_nc.close()


def _console() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, width=400), buffer


def _venue_elsewhere() -> Event:
    return f.venue("SZ-FM-009", f.at("2023-03-01 09:00"), district=OTHER)


async def _forge(stack: Stack, payload: bytes, headers: dict[str, str]) -> int:
    """District 320703's publisher writes a dead letter on the one subject NATS lets it."""
    ack = await stack.publisher.nc.jetstream().publish(
        f"cw.dlq.intake.{DISTRICT}", payload, headers=headers
    )
    assert ack.stream == DEAD_LETTERS_STREAM
    assert stack.publisher.refusals() == []
    return int(ack.seq)


async def test_a_letter_claiming_another_districts_projector_letter_is_its_writers_intake_letter(
    stack: Stack,
) -> None:
    elsewhere = _venue_elsewhere()
    payload = encode_event(elsewhere)
    # Headers exactly as the projector writes them for a message of 320706's stream.
    claims = dead_letter_headers(
        stage="projector",
        reason="unstorable: a test",
        field="(event)",
        payload=payload,
        subject=FORGED_SUBJECT,
        stream_seq=41,
    )
    seq = await _forge(stack, payload, claims)

    [row] = await stack.letters()
    assert (row["seq"], row["subject"], row["stage"]) == (
        seq,
        f"cw.dlq.intake.{DISTRICT}",
        "intake",
    )
    assert (row["original_subject"], row["original_stream_seq"]) == (None, None)
    assert row["claims"] == {
        "Cw-Dlq-Stage": "projector",
        "Cw-Dlq-Subject": FORGED_SUBJECT,
        "Cw-Dlq-Stream-Seq": "41",
    }
    assert row["from"] == (
        f"claims stage projector, subject {FORGED_SUBJECT}, stream seq 41, "
        f"but was written to cw.dlq.intake.{DISTRICT}"
    )
    console, out = _console()
    code = await list_command(
        stack.operator.nats_url, stage="intake", limit=50, as_json=False, console=console
    )
    assert code == 0
    [line] = [line for line in out.getvalue().splitlines() if line.startswith(f"{seq}\t")]
    assert line.split("\t")[1] == "intake"
    assert f"claims stage projector, subject {FORGED_SUBJECT}" in line

    shown = await stack.show(seq)
    assert "stage:       intake\n" in shown
    assert (
        f"claims:      stage projector, subject {FORGED_SUBJECT}, stream seq 41, "
        f"but was written to cw.dlq.intake.{DISTRICT}" in shown
    )
    assert "now:         not replayable: Cw-Dlq-Stage: claims projector" in shown
    assert f"cw dlq delete {seq} --reason TEXT" in shown

    # The operator's routine replay, then the forced one: refused in one line, nothing published.
    for force in (False, True):
        code, text = await stack.replay(seq, force=force)
        assert code == 1, text
        [said] = text.splitlines()
        assert said.startswith(f"dead letter {seq}: kept: ")
        assert (
            f"Cw-Dlq-Stage: claims projector, but the letter was written to "
            f"cw.dlq.intake.{DISTRICT}, so it is district {DISTRICT}'s intake letter" in said
        )
        assert f"Cw-Dlq-Subject: claims {FORGED_SUBJECT}, but " in said
        assert await stack.events_in_stream() == 0
        assert await stack.dead_letter_seqs() == [seq]

    # Its removal is recorded as what it is: no stream message of CW_EVENTS is accounted for
    # by it (cw audit reads the projector's recorded actions by their stream sequence).
    console, out = _console()
    assert (
        await delete_command(
            stack.operator.nats_url,
            stack.operator.database_url,
            [seq],
            reason="forged",
            console=console,
        )
        == 0
    ), out.getvalue()
    assert await stack.projector.rows(ACTIONS) == [
        {"stage": "intake", "original_stream_seq": None, "action": "deleted"}
    ]


async def test_a_districts_intake_letter_is_never_replayed_into_another_district(
    stack: Stack,
) -> None:
    elsewhere = _venue_elsewhere()
    payload = encode_event(elsewhere)
    # Headers as cw publish writes them: nothing but another district's event to give it away.
    headers = dead_letter_headers(stage="intake", reason="r", field="(event)", payload=payload)
    seq = await _forge(stack, payload, headers)
    [row] = await stack.letters()
    assert row["claims"] == {}

    shown = await stack.show(seq)
    assert f"now:         valid, but not a replacement: district: is {OTHER}" in shown

    for force in (False, True):
        code, text = await stack.replay(seq, force=force)
        assert code == 1, text
        [said] = text.splitlines()
        assert said.startswith(f"dead letter {seq}: kept: not a replacement")
        assert (
            f"district: is {OTHER}, but district {DISTRICT}'s publisher sent the line "
            f"(cw.dlq.intake.{DISTRICT}); a replacement stays in that district" in said
        )
        assert "--force never publishes a district's letter into another district" in said
        assert await stack.events_in_stream() == 0
        assert await stack.dead_letter_seqs() == [seq]


async def test_genuine_letters_of_every_stage_list_show_and_replay_as_before(
    stack: Stack, tmp_path: Path
) -> None:
    # intake: a line cw publish rejected, as district 320703's publisher.
    good = f.venue("LY-FM-005", f.at("2023-03-01 09:00"))
    naive = {**orjson.loads(encode_event(good)), "occurred_at": "2023-03-01T09:00:00"}
    path = tmp_path / "district.jsonl"
    path.write_bytes(orjson.dumps(naive) + b"\n")
    console, out = _console()
    code = await publish_command(
        stack.district_publisher(), str(path), console=console, progress=False, district=DISTRICT
    )
    assert code == 1, out.getvalue()

    # projector: the district's event whose body names another venue than its subject.
    found = f.issue("LY-FM-001", "I-1", f.at("2023-03-15 10:00"))
    wrong = found.model_copy(update={"venue_id": "LY-FM-002"})
    await stack.publisher.nc.jetstream().publish(found.subject, encode_event(wrong))
    await stack.projector.project()

    # notifier: a reminder a target refused, written as the notifier writes it.
    reminder = "cw.reminders.320703.LY-FM-001.overdue"
    async with watched(
        stack.secured.url("notifier"), inbox_prefix=inbox_prefix("notifier")
    ) as notifier:
        headers = dead_letter_headers(
            stage="notifier",
            reason="the webhook answered 400",
            field="(reminder)",
            payload=b"{}",
            subject=reminder,
            stream_seq=3,
            extra={TARGET: "district-webhook"},
        )
        await notifier.nc.jetstream().publish("cw.dlq.notifier", b"{}", headers=headers)
        assert notifier.refusals() == []

    rows = await stack.letters()
    assert [(r["stage"], r["from"], r["claims"]) for r in rows] == [
        ("intake", "line 1 of district.jsonl", {}),
        ("projector", f"{found.subject} seq 1", {}),
        ("notifier", f"{reminder} seq 3", {}),
    ]
    intake, projector, notifier_letter = (int(str(r["seq"])) for r in rows)
    for seq in (intake, projector, notifier_letter):
        assert "claims:" not in await stack.show(seq)

    code, text = await stack.replay(intake, encode_event(good))
    assert code == 0, text
    assert f"published to CW_EVENTS as seq 2 on {good.subject}" in text
    code, text = await stack.replay(projector, encode_event(found))
    assert code == 0, text
    assert f"published to CW_EVENTS as seq 3 on {found.subject}" in text
    await stack.projector.project()
    assert await stack.projector.rows("SELECT venue_id FROM venues") == [{"venue_id": "LY-FM-005"}]
    assert await stack.projector.rows("SELECT issue_id, venue_id FROM issue_status") == [
        {"issue_id": "I-1", "venue_id": "LY-FM-001"}
    ]
    assert await stack.projector.rows(ACTIONS) == [
        {"stage": "intake", "original_stream_seq": None, "action": "replayed"},
        {"stage": "projector", "original_stream_seq": 1, "action": "replayed"},
    ]
    assert await stack.dead_letter_seqs() == [notifier_letter]


# A district's publisher may write any Nats-Msg-Id on its own intake subject, and JetStream
# deduplicates across the whole of CW_DEAD_LETTERS: a service's letter must never be answered
# as a duplicate of something a district wrote first.


@contextlib.asynccontextmanager
async def _service_letters(
    stack: Stack, stage: str
) -> AsyncIterator[tuple[Watched, DeadLetterPublisher]]:
    """``stage``'s dead letters as its service wires them, as its own NATS user."""
    pool = await asyncpg.create_pool(stack.operator.database_url, min_size=0, max_size=1)
    assert pool is not None
    try:
        async with watched(stack.secured.url(stage), inbox_prefix=inbox_prefix(stage)) as user:
            yield user, DeadLetterPublisher(NatsConnection(user.nc), stage, DeadLetterKey(pool))
            assert user.refusals() == []
    finally:
        await pool.close()


def _misplaced_issue() -> tuple[Event, bytes]:
    """An issue whose body names another venue than its subject: the projector refuses it."""
    found = f.issue("LY-FM-001", "I-1", f.at("2023-03-15 10:00"))
    return found, encode_event(found.model_copy(update={"venue_id": "LY-FM-002"}))


async def test_a_district_cannot_pre_empt_the_projectors_dead_letter(stack: Stack) -> None:
    found, payload = _misplaced_issue()
    ack = await stack.publisher.nc.jetstream().publish(found.subject, payload)
    n = int(ack.seq)
    # The id the projector gave its letter of CW_EVENTS message n, written first by the district.
    forged = await _forge(stack, b"{}", {"Nats-Msg-Id": f"projector:{n}"})

    await stack.projector.project()

    rows = await stack.letters()
    assert (rows[0]["seq"], rows[0]["stage"]) == (forged, "intake")
    [letter] = [r for r in rows if r["stage"] == "projector"]
    assert (letter["original_subject"], letter["original_stream_seq"]) == (found.subject, n)
    assert letter["kind"] == "subject_mismatch", letter
    assert str(letter["reason"]).startswith(f"subject {found.subject} does not match"), letter
    await audits_clean(stack.operator)


async def test_a_district_cannot_pre_empt_the_notifiers_dead_letter(stack: Stack) -> None:
    r = reminder(3)
    pending = Pending(r, 3, reminder_subject(r), reminder_wire(r))
    target = Target("district-webhook", "webhook", "http://127.0.0.1:9/hook")
    forged = await _forge(stack, b"{}", {"Nats-Msg-Id": f"notifier:3:{target.name}"})

    async with _service_letters(stack, "notifier") as (_, publisher):
        letters = RefusalsToDeadLetters(publisher)
        refused = Refused("the webhook answered 400", "http_4xx")
        await letters.publish(pending, target, refused)
        await letters.publish(pending, target, refused)  # again: a crash before it was recorded

    rows = await stack.letters()
    assert (rows[0]["seq"], rows[0]["stage"]) == (forged, "intake")
    [letter] = [r for r in rows if r["stage"] == "notifier"]  # stored, and once
    assert (letter["original_subject"], letter["original_stream_seq"]) == (pending.subject, 3)
    assert "the webhook answered 400" in str(letter["reason"]), letter


async def test_a_services_letter_published_again_after_a_crash_is_stored_once(
    stack: Stack,
) -> None:
    found, payload = _misplaced_issue()
    ack = await stack.publisher.nc.jetstream().publish(found.subject, payload)
    delivery = Delivery(int(ack.seq), found.subject, payload, {})
    async with _service_letters(stack, "projector") as (_, publisher):
        for _ in range(2):  # stored; the batch not committed (a crash); stored again
            await publisher.publish(delivery, "venue_id: r", "venue_id", "subject_mismatch")
    assert [r["stage"] for r in await stack.letters()] == ["projector"]
