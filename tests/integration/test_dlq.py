"""``cw dlq list | show | replay`` against a real NATS (and PostgreSQL for replays).

The rules of replay and delete (subjects, the archive, recorded actions) are in
``test_dlq_replay_rules.py``.
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from nats.aio.client import Client
from rich.console import Console

from contracts.generate import CONTRACTS_DIR
from services.common.deadletters import dead_letter_headers
from services.common.entrypoints import initialise
from services.common.settings import Settings
from services.common.streams import (
    DEAD_LETTERS_STREAM,
    EVENTS_STREAM,
    dead_letter_subject,
)
from services.deadletters.adapters.jetstream import DeadLetterStore
from services.deadletters.entrypoints.cli import (
    delete_command,
    list_command,
    register,
    replay_command,
    show_command,
)
from services.intake.entrypoints.cli import publish_command

pytestmark = pytest.mark.integration

EXAMPLE = json.loads((CONTRACTS_DIR / "examples" / "events.jsonl").read_bytes().splitlines()[30])


def _event(**changes: Any) -> dict[str, Any]:
    obj: dict[str, Any] = json.loads(json.dumps(EXAMPLE))
    for path, value in changes.items():
        *parents, last = path.split("__")
        node = obj
        for p in parents:
            node = node[p]
        node[last] = value
    return obj


GOOD = _event(event_id="0b6f1c55-0000-4000-8000-000000000001")
NAIVE = _event(event_id="0b6f1c55-0000-4000-8000-000000000002", occurred_at="2023-03-15T10:05:00")
EXTRA = _event(event_id="0b6f1c55-0000-4000-8000-000000000003", data__颜色="红")


@pytest.fixture
async def dead_letters(nats_url: str, nc: Client, tmp_path: Path) -> list[int]:
    """``cw publish`` of a file with one good line and two bad ones (lines 2 and 3)."""
    path = tmp_path / "district.jsonl"
    lines = [GOOD, NAIVE, EXTRA]
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in lines))
    code = await publish_command(
        nats_url, str(path), console=Console(file=io.StringIO()), progress=False
    )
    assert code == 1
    letters = await DeadLetterStore(nc.jetstream()).list(stage=None, limit=10)
    assert [letter.line for letter in letters] == [2, 3]
    return [letter.seq for letter in letters]


@pytest.fixture
async def db_url(settings: Settings) -> str:
    """The test's database with the read model and cw.dead_letter_actions (``cw init``)."""
    await initialise(settings)
    return settings.database_url


def _console() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, width=300), buffer


async def _events_count(nc: Client) -> int:
    return int((await nc.jetstream().stream_info(EVENTS_STREAM)).state.messages)


async def test_list_shows_each_dead_letter_with_stage_origin_and_reason(
    nats_url: str, nc: Client, dead_letters: list[int]
) -> None:
    console, out = _console()
    assert await list_command(nats_url, stage=None, limit=50, as_json=True, console=console) == 0
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["seq"] for r in rows] == dead_letters
    assert [r["from"] for r in rows] == ["line 2 of district.jsonl", "line 3 of district.jsonl"]
    assert [r["field"] for r in rows] == ["occurred_at", "data.颜色"]
    assert rows[1]["reason"] == "data.颜色: unknown field (not in the contract)"

    console, out = _console()
    assert await list_command(nats_url, stage=None, limit=1, as_json=False, console=console) == 0
    text = out.getvalue()
    assert f"{DEAD_LETTERS_STREAM}: 2 dead letters (intake 2)" in text
    assert "occurred_at: needs a UTC offset such as +08:00" in text
    assert "showing the oldest 1 of 2" in text


async def test_list_filters_by_stage(nats_url: str, nc: Client, dead_letters: list[int]) -> None:
    payload = orjson.dumps(NAIVE)
    headers = dead_letter_headers(
        stage="projector",
        reason="occurred_at: naive",
        field="occurred_at",
        payload=payload,
        subject="cw.events.320703.LY-FM-001.IssueFound",
        stream_seq=42,
    )
    await nc.jetstream().publish(dead_letter_subject("projector"), payload, headers=headers)

    for stage, expected in (("intake", 2), ("projector", 1), (None, 3)):
        console, out = _console()
        code = await list_command(nats_url, stage=stage, limit=50, as_json=True, console=console)
        assert code == 0
        rows = [json.loads(line) for line in out.getvalue().splitlines()]
        assert len(rows) == expected
        assert all(r["stage"] == stage for r in rows if stage)
    assert rows[-1]["from"] == "cw.events.320703.LY-FM-001.IssueFound seq 42"


async def test_show_prints_reason_headers_and_the_original_payload(
    nats_url: str, dead_letters: list[int]
) -> None:
    console, out = _console()
    assert await show_command(nats_url, dead_letters[1], console=console) == 0
    text = out.getvalue()
    assert "reason:      data.颜色: unknown field (not in the contract)" in text
    assert "from:        line 3 of district.jsonl" in text
    assert "Cw-Dlq-Line: 3" in text
    assert "Cw-Dlq-Stage: intake" in text
    assert '"颜色": "红"' in text  # the payload, indented
    assert f"cw dlq replay {dead_letters[1]} --file FIXED.json" in text

    console, out = _console()
    assert await show_command(nats_url, 9999, console=console) == 1
    assert "no dead letter 9999" in out.getvalue()


async def test_replaying_a_fixed_dead_letter_moves_it_into_the_events(
    nats_url: str, db_url: str, nc: Client, dead_letters: list[int]
) -> None:
    seq = dead_letters[0]
    before = await _events_count(nc)
    fixed = {**NAIVE, "occurred_at": "2023-03-15T10:05:00+08:00"}

    console, out = _console()
    code = await replay_command(
        nats_url, db_url, [seq], fixed=json.dumps(fixed, indent=2).encode(), console=console
    )

    assert code == 0, out.getvalue()
    assert "published to CW_EVENTS" in out.getvalue()
    assert await _events_count(nc) == before + 1
    stored = await nc.jetstream().get_msg(EVENTS_STREAM, before + 1)
    assert stored.headers is not None
    assert stored.headers["Nats-Msg-Id"] == f"replay:intake:{seq}"  # not the event_id (why: domain)
    assert stored.data == orjson.dumps(fixed)  # compact, one line like any event
    assert stored.subject == (
        f"cw.events.{NAIVE['district']}.{NAIVE['venue_id']}.{NAIVE['event_type']}"
    )
    assert await DeadLetterStore(nc.jetstream()).get(seq) is None

    console, out = _console()
    assert await list_command(nats_url, stage=None, limit=50, as_json=True, console=console) == 0
    assert [json.loads(line)["seq"] for line in out.getvalue().splitlines()] == [dead_letters[1]]


async def test_replaying_an_unfixed_dead_letter_keeps_it(
    nats_url: str, db_url: str, nc: Client, dead_letters: list[int]
) -> None:
    before = await _events_count(nc)
    console, out = _console()
    assert await replay_command(nats_url, db_url, dead_letters, fixed=None, console=console) == 1
    text = out.getvalue()
    assert f"dead letter {dead_letters[0]}: kept: still invalid: occurred_at: " in text
    assert f"dead letter {dead_letters[1]}: kept: still invalid: data.颜色: " in text
    assert await _events_count(nc) == before
    store = DeadLetterStore(nc.jetstream())
    assert [d.seq for d in await store.list(stage=None, limit=10)] == dead_letters


async def test_a_fix_that_is_still_wrong_is_not_published(
    nats_url: str, db_url: str, nc: Client, dead_letters: list[int]
) -> None:
    before = await _events_count(nc)
    console, out = _console()
    still_wrong = {**NAIVE, "occurred_at": "2023-03-15T10:05:00+08:00", "event_id": "oops"}
    code = await replay_command(
        nats_url, db_url, [dead_letters[0]], fixed=orjson.dumps(still_wrong), console=console
    )
    assert code == 1
    assert "kept: the fix is invalid: event_id: " in out.getvalue()
    assert await _events_count(nc) == before
    assert await DeadLetterStore(nc.jetstream()).get(dead_letters[0]) is not None


async def test_replay_after_a_crash_between_publish_and_delete_only_removes_the_dead_letter(
    nats_url: str, db_url: str, nc: Client, dead_letters: list[int]
) -> None:
    seq = dead_letters[1]
    fixed = orjson.dumps({**EXTRA, "data": EXAMPLE["data"]})
    # The earlier replay stored the event (with the replay's Nats-Msg-Id) and died before
    # recording and removing the dead letter.
    await nc.jetstream().publish(
        f"cw.events.{EXTRA['district']}.{EXTRA['venue_id']}.{EXTRA['event_type']}",
        fixed,
        headers={"Nats-Msg-Id": f"replay:intake:{seq}"},
    )
    before = await _events_count(nc)

    console, out = _console()
    assert await replay_command(nats_url, db_url, [seq], fixed=fixed, console=console) == 0
    assert f"already in CW_EVENTS as seq {before} on " in out.getvalue()
    assert "an earlier replay of this dead letter" in out.getvalue()
    assert await _events_count(nc) == before
    assert await DeadLetterStore(nc.jetstream()).get(seq) is None


async def test_a_fix_with_another_event_id_is_kept(
    nats_url: str, db_url: str, nc: Client, dead_letters: list[int]
) -> None:
    seq = dead_letters[0]
    fixed = {**NAIVE, "occurred_at": "2023-03-15T10:05:00+08:00", "event_id": GOOD["event_id"]}
    before = await _events_count(nc)
    console, out = _console()
    code = await replay_command(nats_url, db_url, [seq], fixed=orjson.dumps(fixed), console=console)
    assert code == 1
    assert (
        f"kept: not a replacement for the dead letter's event: event_id: is {GOOD['event_id']}, "
        f"but the dead letter's event has {NAIVE['event_id']}" in out.getvalue()
    )
    assert await _events_count(nc) == before
    assert await DeadLetterStore(nc.jetstream()).get(seq) is not None


async def test_a_dead_letter_whose_payload_is_valid_now_is_replayed_as_is(
    nats_url: str, db_url: str, nc: Client
) -> None:
    # A projector dead letter: the event failed in projection, not in validation.
    payload = orjson.dumps(GOOD)
    headers = dead_letter_headers(
        stage="projector", reason="database unavailable", field="(event)", payload=payload
    )
    ack = await nc.jetstream().publish(dead_letter_subject("projector"), payload, headers=headers)
    console, out = _console()
    assert await replay_command(nats_url, db_url, [ack.seq], fixed=None, console=console) == 0
    assert "published to CW_EVENTS as seq 1" in out.getvalue()
    stored = await nc.jetstream().get_msg(EVENTS_STREAM, 1)
    assert stored.data == payload


async def test_missing_streams_are_reported(nats_url: str, database_url: str) -> None:
    db_url = database_url  # an empty database: NATS is asked first
    for command in (
        list_command(nats_url, stage=None, limit=5, as_json=False, console=_console()[0]),
        show_command(nats_url, 1, console=_console()[0]),
        replay_command(nats_url, db_url, [1], fixed=None, console=_console()[0]),
        delete_command(nats_url, db_url, [1], reason="test", console=_console()[0]),
    ):
        assert await command == 2


def test_replay_takes_one_seq_with_a_fix(
    nats_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = argparse.ArgumentParser(prog="cw")
    register(parser.add_subparsers(dest="command", required=True))
    monkeypatch.setenv("CW_NATS_URL", nats_url)
    fixed = tmp_path / "fixed.json"
    fixed.write_text("{}", encoding="utf-8")

    args = parser.parse_args(["dlq", "replay", "1", "2", "--file", str(fixed)])
    assert args.handler(args) == 2
    assert "exactly one SEQ" in capsys.readouterr().out

    args = parser.parse_args(["dlq", "replay", "1", "--file", str(tmp_path / "missing.json")])
    assert args.handler(args) == 2
    assert "cannot read" in capsys.readouterr().out


async def test_replay_and_delete_without_the_database_objects_say_run_cw_init(
    nats_url: str, nc: Client, database_url: str, dead_letters: list[int]
) -> None:
    # database_url is an empty database: no read model, no cw.dead_letter_actions.
    replay_console, replay_out = _console()
    delete_console, delete_out = _console()
    assert (
        await replay_command(
            nats_url, database_url, dead_letters, fixed=None, console=replay_console
        )
        == 2
    )
    assert (
        await delete_command(
            nats_url, database_url, dead_letters, reason="test", console=delete_console
        )
        == 2
    )
    assert "run `cw init` first" in replay_out.getvalue()
    assert "run `cw init` first" in delete_out.getvalue()
    store = DeadLetterStore(nc.jetstream())
    assert [d.seq for d in await store.list(stage=None, limit=9)] == dead_letters


async def test_intake_dead_letters_of_every_district_and_older_ones_are_stage_intake(
    nats_url: str, nc: Client
) -> None:
    js = nc.jetstream()
    for subject in ("cw.dlq.intake", "cw.dlq.intake.320703", "cw.dlq.intake.110101"):
        payload = orjson.dumps({"district": subject})
        headers = dead_letter_headers(stage="intake", reason="r", field="f", payload=payload)
        await js.publish(subject, payload, headers=headers)
    await js.publish("cw.dlq.projector", b"{}")  # no headers: the stage is read from the subject

    console, out = _console()
    assert await list_command(nats_url, stage="intake", limit=2, as_json=False,
                              console=console) == 0  # fmt: skip
    text = out.getvalue()
    assert f"{DEAD_LETTERS_STREAM}: 4 dead letters (intake 3, projector 1)" in text
    assert "showing the oldest 2 of 3" in text
    console, out = _console()
    assert await list_command(nats_url, stage="intake", limit=50, as_json=True,
                              console=console) == 0  # fmt: skip
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(r["subject"], r["stage"]) for r in rows] == [
        ("cw.dlq.intake", "intake"),
        ("cw.dlq.intake.320703", "intake"),
        ("cw.dlq.intake.110101", "intake"),
    ]
    store = DeadLetterStore(js)
    [projector] = await store.list(stage="projector", limit=50)
    assert projector.stage == "projector"
