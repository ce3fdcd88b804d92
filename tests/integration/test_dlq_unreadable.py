"""``cw dlq show | replay`` of a dead letter whose payload no JSON parser agrees on (NaN)."""

from __future__ import annotations

import io
import json

import orjson
import pytest
from nats.aio.client import Client
from rich.console import Console

from contracts.generate import CONTRACTS_DIR
from services.common.deadletters import dead_letter_headers
from services.common.streams import EVENTS_STREAM, dead_letter_subject
from services.deadletters.adapters.jetstream import DeadLetterStore
from services.deadletters.entrypoints.cli import replay_command, show_command
from tests.integration.conftest import Harness

pytestmark = pytest.mark.integration

EXAMPLE = (CONTRACTS_DIR / "examples" / "events.jsonl").read_bytes().splitlines()[30]
NAN = EXAMPLE.replace(b'"schema_version":1', b'"schema_version":NaN')


async def _dead_letter(nc: Client) -> int:
    assert NAN != EXAMPLE
    headers = dead_letter_headers(
        stage="projector",
        reason="(event): malformed JSON",
        field="(event)",
        payload=NAN,
        subject="cw.events.320703.LY-FM-001.IssueFound",
        stream_seq=7,
    )
    ack = await nc.jetstream().publish(dead_letter_subject("projector"), NAN, headers=headers)
    return int(ack.seq)


def _console() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, width=300), buffer


async def test_show_prints_a_dead_letter_whose_payload_has_nan(nats_url: str, nc: Client) -> None:
    seq = await _dead_letter(nc)
    console, out = _console()

    assert await show_command(nats_url, seq, console=console) == 0

    text = out.getvalue()
    assert f"dead letter: {seq} on cw.dlq.projector" in text
    assert "still invalid" in text
    assert "malformed JSON" in text
    assert '"schema_version":NaN' in text  # the payload, as it was received
    assert "Traceback" not in text


async def test_replay_of_nan_keeps_the_dead_letter_and_a_nan_fix_is_refused(
    harness: Harness,
) -> None:
    nc, nats_url, database_url = (
        harness.nc,
        harness.settings.nats_url,
        harness.settings.database_url,
    )
    seq = await _dead_letter(nc)
    events_before = (await nc.jetstream().stream_info(EVENTS_STREAM)).state.messages

    console, out = _console()
    assert await replay_command(nats_url, database_url, [seq], fixed=None, console=console) == 1
    assert f"dead letter {seq}: kept: still invalid: (event): malformed JSON" in out.getvalue()

    fix = json.dumps({**orjson.loads(EXAMPLE), "schema_version": float("inf")}).encode()
    assert b"Infinity" in fix
    console, out = _console()
    assert await replay_command(nats_url, database_url, [seq], fixed=fix, console=console) == 1
    assert "the fix is invalid: (event): malformed JSON" in out.getvalue()

    assert (await nc.jetstream().stream_info(EVENTS_STREAM)).state.messages == events_before
    assert await DeadLetterStore(nc.jetstream()).get(seq) is not None
