"""The event contract: generated files, every rule with a bad event, upcasting, round trips.

Each bad event is checked twice: by ``contracts.decode_event`` (what the services use) and by the
intake's judgement of a line (what ``cw publish`` uses); both must name the same field.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts import (
    EVENT_TYPES,
    MAX_EVENT_BYTES,
    SCHEMA_VERSION,
    EventRejected,
    IssueFound,
    decode_event,
    encode_event,
    generate,
)
from contracts.examples_source import DISTRICT, VENUES
from contracts.reminders import Reminder, reminder_subject
from contracts.upcasting import JsonObject, register_upcaster, unregister_upcaster
from services.common import deadletters
from services.common.deadletters import MSG_ID, dead_letter_headers
from services.intake.adapters.files import read_lines
from services.intake.domain.lines import Accepted, Rejected, judge
from tests.factories import with_path

pytestmark = pytest.mark.unit

EXAMPLES_FILE = generate.CONTRACTS_DIR / "examples" / "events.jsonl"
CATALOG = {
    "FM-PUB", "FM-ZONE", "FM-POUL", "FM-3F", "FM-STALL", "FM-CERT", "FM-WASTE", "FM-WC", "FM-VEC",
    "MALL-TOB", "MALL-HE", "MALL-PSA", "MALL-PH", "MALL-AED",
}  # fmt: skip


# --- generated files --------------------------------------------------------------------------


def test_generated_files_are_up_to_date() -> None:
    out = generate.stale()
    assert out == [], f"run `python -m contracts.generate`: {out}"


def test_check_lists_a_stale_file_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = generate.render()
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text, encoding="utf-8")
    assert generate.stale(tmp_path, files) == []

    (tmp_path / "schema" / "IssueFound.v1.json").write_text("{}", encoding="utf-8")
    (tmp_path / "schema" / "Old.v1.json").write_text("{}", encoding="utf-8")
    (tmp_path / "asyncapi.json").unlink()
    assert generate.stale(tmp_path, files) == [
        "schema/IssueFound.v1.json (out of date)",
        "asyncapi.json (missing)",
        "schema/Old.v1.json (not generated any more)",
    ]

    assert generate.main(["--check"]) == 0
    assert "up to date" in capsys.readouterr().out


def test_generation_is_deterministic() -> None:
    assert generate.render() == generate.render()


def _resolve(document: dict[str, Any], ref: str) -> Any:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


@pytest.mark.parametrize("name", ["asyncapi.json", "schema/envelope.v1.json"])
def test_every_reference_in_a_generated_document_resolves(name: str) -> None:
    document = json.loads(generate.render()[name])
    refs = set(_refs(document))
    assert refs
    for ref in refs:
        assert ref.startswith("#/")
        assert _resolve(document, ref) is not None


def test_asyncapi_documents_channels_messages_and_headers() -> None:
    doc = json.loads(generate.render()["asyncapi.json"])
    assert doc["asyncapi"] == "3.1.0"
    assert doc["servers"]["nats"]["protocol"] == "nats"

    events = doc["channels"]["events"]
    assert events["address"] == "cw.events.{district}.{venue_id}.{event_type}"
    assert set(re.findall(r"{(\w+)}", events["address"])) == set(events["parameters"])
    assert events["parameters"]["event_type"]["enum"] == list(EVENT_TYPES)
    for event_type in EVENT_TYPES:
        message = doc["components"]["messages"][event_type]
        assert message["headers"]["required"] == ["Nats-Msg-Id"]
        assert message["payload"] == {"$ref": f"#/components/schemas/{event_type}"}
        example = message["examples"][0]
        assert example["headers"]["Nats-Msg-Id"] == example["payload"]["event_id"]
        decode_event(orjson.dumps(example["payload"]))

    dead = doc["channels"]["deadLetters"]
    assert dead["address"] == "cw.dlq.{stage}"
    documented = doc["components"]["messages"]["DeadLetter"]["headers"]["properties"]
    # Every header the dead-letter format writes is documented for operators.
    written = {
        value
        for name, value in vars(deadletters).items()
        if name.isupper() and isinstance(value, str) and value.startswith(("Cw-Dlq-", "Nats-"))
    }
    assert written <= set(documented)
    # It says what the code does: the first 32 hexadecimal digits of the payload's SHA-256.
    own_id = dead_letter_headers(stage="intake", reason="r", field="f", payload=b"{}")[MSG_ID]
    assert own_id == "intake:" + hashlib.sha256(b"{}").hexdigest()[:32]
    assert "first 32 hexadecimal digits of the SHA-256" in documented[MSG_ID]["description"]


def test_asyncapi_documents_the_reminders() -> None:
    doc = json.loads(generate.render()["asyncapi.json"])
    reminders, digests = doc["channels"]["reminders"], doc["channels"]["reminderDigests"]
    assert reminders["address"] == "cw.reminders.{district}.{venue_id}.{kind}"
    assert digests["address"] == "cw.reminders.{district}.digest"
    for channel in (reminders, digests):
        assert set(re.findall(r"{(\w+)}", channel["address"])) == set(channel["parameters"])
    assert "digest" not in reminders["parameters"]["kind"]["enum"]
    message = doc["components"]["messages"]["Reminder"]
    assert message["payload"] == {"$ref": "#/components/schemas/Reminder"}
    for example in message["examples"]:
        reminder = Reminder.model_validate_json(orjson.dumps(example["payload"]))
        assert example["headers"]["Nats-Msg-Id"] == str(reminder.reminder_id)
        address = digests if reminder.kind == "digest" else reminders
        subject = reminder_subject(reminder.district, reminder.venue_id, reminder.kind)
        assert subject == address["address"].format(**reminder.model_dump())
    actions = {(o["action"], o["channel"]["$ref"]) for o in doc["operations"].values()}
    for channel in ("#/channels/reminders", "#/channels/reminderDigests"):
        assert {("send", channel), ("receive", channel)} <= actions


def test_schema_files_describe_each_event_type() -> None:
    files = generate.render()
    envelope = json.loads(files["schema/envelope.v1.json"])
    assert envelope["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert "discriminator" not in json.dumps(envelope)
    selected = {
        branch["if"]["properties"]["event_type"]["const"]: branch["then"]["$ref"]
        for branch in envelope["allOf"]
    }
    assert selected == {t: f"#/$defs/{t}" for t in EVENT_TYPES}
    assert envelope["properties"]["event_type"]["enum"] == list(EVENT_TYPES)
    for event_type in EVENT_TYPES:
        schema = json.loads(files[f"schema/{event_type}.v1.json"])
        assert schema["properties"]["event_type"]["const"] == event_type
        assert schema["properties"]["schema_version"]["const"] == SCHEMA_VERSION
        assert schema["additionalProperties"] is False
        assert schema["properties"]["occurred_at"]["format"] == "date-time"


# --- the example campaign ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def examples() -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in EXAMPLES_FILE.read_bytes().splitlines()]


def test_every_example_validates(examples: list[dict[str, Any]]) -> None:
    for line in EXAMPLES_FILE.read_bytes().splitlines():
        verdict = judge(next(read_lines(io.BytesIO(line))))
        assert isinstance(verdict, Accepted), verdict
    assert 100 <= len(examples) <= 200
    assert len({e["event_id"] for e in examples}) == len(examples)
    assert [e["occurred_at"] for e in examples] == sorted(e["occurred_at"] for e in examples)
    assert {e["district"] for e in examples} == {DISTRICT}
    assert {e["event_type"] for e in examples} == set(EVENT_TYPES)


def test_examples_cover_the_campaign(examples: list[dict[str, Any]]) -> None:
    assert len({e["venue_id"] for e in examples}) == len(VENUES) == 10
    registered = [e for e in examples if e["event_type"] == "VenueRegistered"]
    assert {e["data"]["kind"] for e in registered} == {"mall_supermarket", "farmers_market"}
    assert {e.get("phase") for e in examples} == {"self_check", "re_review", "long_term", None}
    kinds = {e["data"]["kind"] for e in examples if e["event_type"] == "InspectionRecorded"}
    assert kinds == {"self_check", "supervision", "look_back", "re_review"}
    issues = [e for e in examples if e["event_type"] == "IssueFound"]
    assert {e["data"]["item_code"] for e in issues} <= CATALOG
    assert all(re.search(r"[\u4e00-\u9fff]", e["data"]["description"]) for e in issues)


def _at(event: dict[str, Any], key: str = "occurred_at") -> datetime:
    value = event[key] if key == "occurred_at" else event["data"][key]
    return datetime.fromisoformat(value)


def test_examples_contain_each_case_a_reader_must_handle(examples: list[dict[str, Any]]) -> None:
    by_issue: dict[str, list[dict[str, Any]]] = {}
    for e in examples:
        if "issue_id" in e["data"]:
            by_issue.setdefault(e["data"]["issue_id"], []).append(e)
    end = _at(examples[-1])

    def types(history: list[dict[str, Any]]) -> list[str]:
        return [e["event_type"] for e in history]

    def due(history: list[dict[str, Any]]) -> datetime | None:
        orders = [e for e in history if e["event_type"] == "RectificationDue"]
        return _at(orders[-1], "due_at") if orders else None

    extended = [h for h in by_issue.values() if types(h).count("RectificationDue") >= 2]
    assert extended
    failed_then_passed = [
        h
        for h in by_issue.values()
        if "RecheckFailed" in types(h)
        and types(h).index("RecheckFailed") < types(h).index("RecheckPassed")
    ]
    assert failed_then_passed
    closed_late = [
        h
        for h in by_issue.values()
        if types(h)[-1] == "RecheckPassed" and (d := due(h)) is not None and _at(h[-1]) > d
    ]
    assert closed_late
    open_overdue = [
        h
        for h in by_issue.values()
        if "RecheckPassed" not in types(h) and (d := due(h)) is not None and d < end
    ]
    assert open_overdue

    closed = {
        (h[0]["venue_id"], h[0]["data"]["item_code"], _at(h[-1]))
        for h in by_issue.values()
        if types(h)[-1] == "RecheckPassed"
    }
    rebounds = [
        e
        for e in examples
        if e["event_type"] == "IssueFound"
        and any(
            venue == e["venue_id"]
            and item == e["data"]["item_code"]
            and timedelta(0) < _at(e) - at <= timedelta(days=90)
            for venue, item, at in closed
        )
    ]
    assert rebounds
    assert any("phase" not in e for e in examples)


# --- every rule, with a bad event -------------------------------------------------------------

GOOD: dict[str, Any] = {
    "event_id": "6f1c2a9e-8d1b-4c55-9a51-0b7d2f9e3c10",
    "event_type": "IssueFound",
    "schema_version": 1,
    "occurred_at": "2023-03-15T10:05:00+08:00",
    "source": "ly-inspection-app",
    "district": "320703",
    "venue_id": "LY-FM-001",
    "phase": "re_review",
    "data": {"issue_id": "ISS-1", "item_code": "FM-3F", "severity": "major"},
}
ORDER: dict[str, Any] = {
    **GOOD,
    "event_type": "RectificationDue",
    "data": {"issue_id": "ISS-1", "order_no": "LY-ZG-1", "due_at": "2023-03-30T17:30:00+08:00"},
}
VENUE: dict[str, Any] = {
    **GOOD,
    "event_type": "VenueRegistered",
    "data": {"name": "墟沟农贸市场", "kind": "farmers_market", "first_responsible": {"name": "王"}},
}
INSPECTION: dict[str, Any] = {
    **GOOD,
    "event_type": "InspectionRecorded",
    "data": {"inspection_id": "INS-1", "kind": "supervision"},
}


def _with(base: dict[str, Any], path: str, value: Any) -> bytes:
    """``base`` with the dotted ``path`` set to ``value`` (or removed, for ``...``)."""
    return orjson.dumps(with_path(base, path, value))


BAD_EVENTS: list[tuple[str, bytes, str, str]] = [
    # (what, bytes, the field named, words of the reason)
    ("malformed JSON", b'{"event_id": ', "(event)", "malformed JSON"),
    ("trailing garbage", orjson.dumps(GOOD) + b"}", "(event)", "malformed JSON"),
    ("not UTF-8", orjson.dumps(GOOD).replace(b"ly-inspection", b"ly-\xff\xfe"), "(event)", "JSON"),
    ("an array", b"[1, 2]", "(event)", "object"),
    ("a string", b'"IssueFound"', "(event)", "object"),
    ("unknown event_type", _with(GOOD, "event_type", "IssueClosed"), "event_type", "unknown"),
    ("event_type missing", _with(GOOD, "event_type", ...), "event_type", "required"),
    ("event_id missing", _with(GOOD, "event_id", ...), "event_id", "required"),
    ("occurred_at missing", _with(GOOD, "occurred_at", ...), "occurred_at", "required"),
    ("data missing", _with(GOOD, "data", ...), "data", "required"),
    ("data.severity missing", _with(GOOD, "data.severity", ...), "data.severity", "required"),
    ("data.due_at missing", _with(ORDER, "data.due_at", ...), "data.due_at", "required"),
    ("extra field", _with(GOOD, "colour", "red"), "colour", "unknown field"),
    ("extra data field", _with(GOOD, "data.colour", "red"), "data.colour", "unknown field"),
    ("extra nested field", _with(VENUE, "data.first_responsible.age", 50),
     "data.first_responsible.age", "unknown field"),
    ("severity not in the list", _with(GOOD, "data.severity", "huge"), "data.severity", "minor"),
    ("schema_version a string", _with(GOOD, "schema_version", "1"), "schema_version",
     'must be a whole JSON number such as 1, not "1"'),
    ("schema_version true", _with(GOOD, "schema_version", True), "schema_version",
     "not true"),
    ("schema_version 1.5", _with(GOOD, "schema_version", 1.5), "schema_version", "whole"),
    ("schema_version unknown", _with(GOOD, "schema_version", 7), "schema_version",
     "version 7 of IssueFound cannot be read: this reader knows version 1 and no upcaster"),
    ("schema_version 7.0", _with(GOOD, "schema_version", 7.0), "schema_version", "no upcaster"),
    ("count a string", _with(INSPECTION, "data.items_checked", "5"),
     "data.items_checked", "integer"),
    ("count negative", _with(INSPECTION, "data.items_failed", -1), "data.items_failed", "0"),
    ("evidence a string", _with(GOOD, "data.evidence", "IMG-1.jpg"), "data.evidence", "array"),
    ("data null", _with(GOOD, "data", None), "data", "object"),
    ("event_id not a UUID", _with(GOOD, "event_id", "event-1"), "event_id", "UUID"),
    ("event_id without hyphens", _with(GOOD, "event_id", "6f1c2a9e8d1b4c559a510b7d2f9e3c10"),
     "event_id", "8-4-4-4-12 hexadecimal digits"),
    ("event_id urn:uuid:", _with(GOOD, "event_id", "urn:uuid:6f1c2a9e-8d1b-4c55-9a51-0b7d2f9e3c10"),
     "event_id", "no urn:uuid: prefix"),
    ("occurred_at a number", _with(GOOD, "occurred_at", 1678846000),
     "occurred_at", "RFC 3339 timestamp"),
    ("occurred_at naive", _with(GOOD, "occurred_at", "2023-03-15T10:05:00"),
     "occurred_at", "offset"),
    ("occurred_at a date", _with(GOOD, "occurred_at", "2023-03-15"), "occurred_at",
     "must be a date and a time with a UTC offset"),
    ("due_at with a space", _with(ORDER, "data.due_at", "2023-03-30 17:30"), "data.due_at",
     'needs a "T" between the date and the time'),
    ("occurred_at +08", _with(GOOD, "occurred_at", "2023-03-15T10:05:00+08"), "occurred_at",
     "needs a UTC offset written Z or +hh:mm, such as +08:00"),
    ("occurred_at +0800", _with(GOOD, "occurred_at", "2023-03-15T10:05:00+0800"), "occurred_at",
     "+hh:mm"),
    ("occurred_at without seconds", _with(GOOD, "occurred_at", "2023-03-15T10:05+08:00"),
     "occurred_at", "needs the seconds"),
    ("occurred_at a leap second", _with(GOOD, "occurred_at", "2016-12-31T23:59:60Z"),
     "occurred_at", "cannot be a leap second"),
    ("occurred_at 30 February", _with(GOOD, "occurred_at", "2023-02-30T10:05:00+08:00"),
     "occurred_at", "is not a real date and time"),
    ("count 5.5", _with(INSPECTION, "data.items_checked", 5.5), "data.items_checked",
     "must be an integer"),
    ("count too large", _with(INSPECTION, "data.items_checked", 100_001), "data.items_checked",
     "may be at most 100000 (got 100001)"),
    ("source not a string", _with(GOOD, "source", 5), "source", "must be a string (got 5)"),
    ("source empty", _with(GOOD, "source", ""), "source", "may not be empty"),
    ("venue_id with a dot", _with(GOOD, "venue_id", "LY.FM.001"), "venue_id", "no dots"),
    ("venue_id with a space", _with(GOOD, "venue_id", "LY FM"), "venue_id", "spaces"),
    ("venue_id a wildcard", _with(GOOD, "venue_id", ">"), "venue_id", "subject token"),
    ("venue_id a star", _with(GOOD, "venue_id", "*"), "venue_id", "subject token"),
    ("venue_id empty", _with(GOOD, "venue_id", ""), "venue_id", "1–64 characters"),
    ("venue_id Chinese", _with(GOOD, "venue_id", "墟沟市场"), "venue_id",
     'may only contain letters, digits, "_" and "-" (1–64 characters)'),
    ("venue_id too long", _with(GOOD, "venue_id", "V" * 65), "venue_id", "1–64"),
    ("district 5 digits", _with(GOOD, "district", "32070"), "district", "6-digit"),
    ("unknown phase", _with(GOOD, "phase", "rectification"), "phase", "self_check"),
    ("item_code lower case", _with(GOOD, "data.item_code", "fm-3f"), "data.item_code",
     "capital letters"),
    ("source too long", _with(GOOD, "source", "s" * 65), "source", "at most 64"),
    ("description too long", _with(GOOD, "data.description", "问" * 2001),
     "data.description", "at most 2000"),
    ("venue name too long", _with(VENUE, "data.name", "市" * 129), "data.name", "at most 128"),
    ("too much evidence", _with(GOOD, "data.evidence", ["IMG.jpg"] * 51),
     "data.evidence", "at most 50"),
    ("a 2 MB message", _with(GOOD, "data.description", "x" * 2_000_000), "(event)", "limit"),
    ("just over the limit", _with(GOOD, "data.description", "x" * MAX_EVENT_BYTES),
     "(event)", "bytes"),
    # What PostgreSQL cannot store: the NUL character, and instants outside its reach.
    ("NUL in description", _with(GOOD, "data.description", "a\u0000b"),
     "data.description", "may not contain the NUL character (\\u0000)"),
    ("NUL in source", _with(GOOD, "source", "\u0000"), "source", "NUL character"),
    ("NUL in a person's name", _with(VENUE, "data.first_responsible.name", "王\u0000"),
     "data.first_responsible.name", "NUL character"),
    ("NUL in evidence", _with(GOOD, "data.evidence", ["IMG-1.jpg", "IMG\u0000"]),
     "data.evidence.1", "NUL character"),
    ("NUL in an identifier", _with(GOOD, "data.issue_id", "ISS\u00001"),
     "data.issue_id", "NUL character"),
    ("NUL in venue_id", _with(GOOD, "venue_id", "LY\u0000"), "venue_id", "NUL character"),
    ("NUL in a phone", _with(VENUE, "data.first_responsible.phone", "138\u0000"),
     "data.first_responsible.phone", "NUL character"),
    ("NUL in the order number", _with(ORDER, "data.order_no", "LY\u0000"),
     "data.order_no", "NUL character"),
    ("NUL in an unknown field", _with(GOOD, "data.colour", "\u0000"),
     "data.colour", "unknown field"),
    ("NUL in severity", _with(GOOD, "data.severity", "major\u0000"),
     "data.severity", "NUL character"),
    ("NUL in occurred_at", _with(GOOD, "occurred_at", "2023-03-15T10:05:00\u0000+08:00"),
     "occurred_at", "NUL character"),
    ("occurred_at year 1", _with(GOOD, "occurred_at", "0001-01-01T00:00:00Z"), "occurred_at",
     "must be dated from 1999-12-31 to 2100-01-01 as written (the years 2000 to 2099 in any "
     'offset) (got "0001-01-01T00:00:00Z")'),
    ("occurred_at year 1 at +14:00", _with(GOOD, "occurred_at", "0001-01-01T00:00:00+14:00"),
     "occurred_at", "must be dated from"),
    ("occurred_at year 9999", _with(GOOD, "occurred_at", "9999-12-31T23:00:00-05:00"),
     "occurred_at", "must be dated from"),
    ("occurred_at offset -23:59", _with(GOOD, "occurred_at", "2023-03-15T10:05:00-23:59"),
     "occurred_at",
     'needs a UTC offset between -14:00 and +14:00 (got "2023-03-15T10:05:00-23:59")'),
    ("occurred_at offset +14:01", _with(GOOD, "occurred_at", "2023-03-15T10:05:00+14:01"),
     "occurred_at", "between -14:00 and +14:00"),
    ("occurred_at two days early", _with(GOOD, "occurred_at", "1999-12-30T23:59:59-14:00"),
     "occurred_at", "must be dated from"),
    ("due_at year 1", _with(ORDER, "data.due_at", "0001-01-01T00:00:00Z"),
     "data.due_at", "must be dated from"),
    ("due_at offset -23:59", _with(ORDER, "data.due_at", "2023-03-30T17:30:00-23:59"),
     "data.due_at", "UTC offset"),
    # What JSON parsers disagree on: every one is a rejection, never a crash.
    ("schema_version NaN",
     orjson.dumps(GOOD).replace(b'"schema_version":1', b'"schema_version":NaN'),
     "(event)", "malformed JSON"),
    ("schema_version Infinity",
     orjson.dumps(GOOD).replace(b'"schema_version":1', b'"schema_version":-Infinity'),
     "(event)", "not JSON numbers"),
    ("schema_version 1e400",
     orjson.dumps(GOOD).replace(b'"schema_version":1', b'"schema_version":1e400'),
     "(event)", "malformed JSON"),
    ("schema_version a huge number",
     orjson.dumps(GOOD).replace(b'"schema_version":1', b'"schema_version":' + b"9" * 400),
     "(event)", "malformed JSON"),
    ("a count NaN", _with(INSPECTION, "data.items_checked", 7).replace(b":7}", b":NaN}"),
     "data.items_checked", "integer"),
    ("a byte-order mark", b"\xef\xbb\xbf" + orjson.dumps(GOOD), "(event)", "byte-order mark"),
    ("a depth bomb", b'{"data":' * 5000 + b"1" + b"}" * 5000, "(event)", "malformed JSON"),
    ("an array bomb", b"[" * 30000 + b"]" * 30000, "(event)", "malformed JSON"),
    ("a lone surrogate", _with(GOOD, "data.description", "x").replace(b'"x"', b'"\\ud800"'),
     "(event)", "malformed JSON"),
    ("a raw NUL byte", _with(GOOD, "data.description", "x").replace(b'"x"', b'"\x00"'),
     "(event)", "malformed JSON"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "field", "words"),
    [pytest.param(raw, field, words, id=what) for what, raw, field, words in BAD_EVENTS],
)
def test_a_bad_event_is_rejected_naming_the_field(raw: bytes, field: str, words: str) -> None:
    with pytest.raises(EventRejected) as caught:
        decode_event(raw)
    error = caught.value
    assert error.first_field == field
    assert error.reason.startswith(f"{field}: ")
    assert words.lower() in error.reason.lower()

    # cw publish reads the same bytes as line 7 of a file and says the same.
    lines = list(read_lines(io.BytesIO(b"\n" * 6 + raw + b"\n")))
    verdict = judge(lines[6])
    assert isinstance(verdict, Rejected)
    assert (verdict.line, verdict.field) == (7, field)
    assert words.lower() in verdict.reason.lower()


def test_all_errors_of_an_event_are_named() -> None:
    raw = _with(json.loads(_with(GOOD, "venue_id", "a.b")), "data.severity", "huge")
    with pytest.raises(EventRejected) as caught:
        decode_event(raw)
    assert [e.field for e in caught.value.errors] == ["venue_id", "data.severity"]


def test_blank_lines_are_skipped_and_a_bom_is_not_content() -> None:
    good = orjson.dumps(GOOD)
    lines = list(read_lines(io.BytesIO(b"\xef\xbb\xbf" + good + b"\r\n  \r\n\n" + good)))
    verdicts = [judge(line) for line in lines]
    assert [type(v).__name__ for v in verdicts] == ["Accepted", "NoneType", "NoneType", "Accepted"]
    assert [line.number for line in lines] == [1, 2, 3, 4]


def test_a_long_line_is_cut_but_its_size_is_kept() -> None:
    raw = _with(GOOD, "data.description", "x" * 2_000_000)
    (line,) = read_lines(io.BytesIO(raw + b"\r\n"))
    assert line.size == len(raw)
    assert len(line.raw) == MAX_EVENT_BYTES + 1
    verdict = judge(line)
    assert isinstance(verdict, Rejected)
    assert verdict.cut
    assert f"message is {len(raw)} bytes" in verdict.reason


# --- upcasting --------------------------------------------------------------------------------

V2_SEVERITY = {"low": "minor", "high": "major", "urgent": "critical"}


@pytest.fixture
def issue_found_v2() -> Iterator[None]:
    """A made-up version 2 of IssueFound: ``severity`` renamed ``level`` with new values, and
    the inspection moved from ``data`` to the envelope. This reader knows version 1."""

    @register_upcaster("IssueFound", 2)
    def v2_to_v1(obj: JsonObject) -> JsonObject:
        data = dict(obj["data"])
        data["severity"] = V2_SEVERITY[data.pop("level")]
        envelope = {k: v for k, v in obj.items() if k != "inspection_id"}
        if "inspection_id" in obj:
            data["inspection_id"] = obj["inspection_id"]
        return {**envelope, "schema_version": 1, "data": data}

    yield
    unregister_upcaster("IssueFound", 2)


def _v2(level: str = "urgent") -> dict[str, Any]:
    data = {k: v for k, v in GOOD["data"].items() if k != "severity"}
    return {**GOOD, "schema_version": 2, "inspection_id": "INS-9", "data": {**data, "level": level}}


@pytest.mark.usefixtures("issue_found_v2")
def test_a_version_2_event_is_read_as_version_1() -> None:
    event = decode_event(orjson.dumps(_v2()))
    assert isinstance(event, IssueFound)
    assert event.schema_version == 1
    assert event.data.severity == "critical"
    assert event.data.inspection_id == "INS-9"


@pytest.mark.usefixtures("issue_found_v2")
def test_an_upcast_event_is_still_validated() -> None:
    bad = _v2()
    bad["data"]["item_code"] = "not a code"
    with pytest.raises(EventRejected) as caught:
        decode_event(orjson.dumps(bad))
    assert caught.value.first_field == "data.item_code"


@pytest.mark.usefixtures("issue_found_v2")
def test_only_the_registered_type_is_upcast() -> None:
    with pytest.raises(EventRejected) as caught:
        decode_event(_with(ORDER, "schema_version", 2))
    assert caught.value.first_field == "schema_version"
    assert "no upcaster" in caught.value.reason


def test_without_the_upcaster_version_2_is_rejected() -> None:
    with pytest.raises(EventRejected) as caught:
        decode_event(orjson.dumps(_v2()))
    assert caught.value.first_field == "schema_version"


# --- round trip -------------------------------------------------------------------------------

OFFSETS = st.sampled_from([UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5))])
MOMENTS = st.datetimes(
    min_value=datetime(1999, 12, 31), max_value=datetime(2100, 1, 1), timezones=OFFSETS
).filter(lambda t: datetime(2000, 1, 1, tzinfo=UTC) <= t < datetime(2100, 1, 1, tzinfo=UTC))
WORDS = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=80)
IDS = st.from_regex(r"\A[A-Za-z0-9_.:-]{1,64}\Z")


@st.composite
def events(draw: Callable[[st.SearchStrategy[Any]], Any]) -> bytes:
    obj = json.loads(json.dumps(draw(st.sampled_from([GOOD, ORDER, VENUE, INSPECTION]))))
    obj["event_id"] = str(draw(st.uuids()))
    obj["occurred_at"] = draw(MOMENTS).isoformat()
    obj["venue_id"] = draw(st.from_regex(r"\A[A-Za-z0-9_-]{1,64}\Z"))
    obj["district"] = draw(st.from_regex(r"\A[0-9]{6}\Z"))
    if draw(st.booleans()):
        obj.pop("phase")
    data = obj["data"]
    if "issue_id" in data:
        data["issue_id"] = draw(IDS)
    if obj["event_type"] == "IssueFound":
        data["description"] = draw(WORDS)
        data["evidence"] = draw(st.lists(WORDS.filter(lambda s: s.strip()), max_size=3))
    if obj["event_type"] == "RectificationDue":
        data["due_at"] = draw(MOMENTS).isoformat()
    return orjson.dumps(obj)


@settings(max_examples=200, deadline=None)
@given(events())
def test_encode_and_decode_round_trip(raw: bytes) -> None:
    event = decode_event(raw)
    again = decode_event(encode_event(event))
    assert again == event
    assert encode_event(again) == encode_event(event)
