"""The generated JSON Schema says what the Python contract says, for publishers in any language.

The schema is checked with the ``jsonschema`` library. ``formatMinimum`` and
``formatExclusiveMaximum`` are ajv-formats keywords that ``jsonschema`` does not know; the test
teaches them to it the way ajv-formats reads them (compare the instants), so the values written
in the schema are checked too, not only their presence.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator, ValidationError, validators
from jsonschema.protocols import Validator

from contracts import EventRejected, decode_event
from contracts.generate import CONTRACTS_DIR, envelope_schema
from contracts.rules import END_TEXT, INSTANT_RULE, NO_NUL_PATTERN
from tests.unit.test_contracts import GOOD, INSPECTION, ORDER, VENUE, _with

pytestmark = pytest.mark.unit

Json = dict[str, Any]


def _instant(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _format_minimum(
    validator: Validator, bound: str, instance: Any, schema: Json
) -> Iterator[ValidationError]:
    del validator, schema
    moment, lowest = _instant(instance) if isinstance(instance, str) else None, _instant(bound)
    if moment is not None and lowest is not None and moment < lowest:
        yield ValidationError(f"{instance} is before {bound}")


def _format_exclusive_maximum(
    validator: Validator, bound: str, instance: Any, schema: Json
) -> Iterator[ValidationError]:
    del validator, schema
    moment, end = _instant(instance) if isinstance(instance, str) else None, _instant(bound)
    if moment is not None and end is not None and moment >= end:
        yield ValidationError(f"{instance} is not before {bound}")


AjvLike = validators.extend(  # type: ignore[no-untyped-call]
    Draft202012Validator,
    {"formatMinimum": _format_minimum, "formatExclusiveMaximum": _format_exclusive_maximum},
)


@pytest.fixture(scope="module")
def schema_validator() -> Validator:
    schema = json.loads((CONTRACTS_DIR / "schema" / "envelope.v1.json").read_text("utf-8"))
    assert schema == json.loads(json.dumps(envelope_schema()))
    Draft202012Validator.check_schema(schema)
    validator: Validator = AjvLike(schema)
    return validator


def _both(validator: Validator, raw: bytes) -> tuple[bool, bool]:
    """(the schema accepts it, the Python contract accepts it)."""
    schema_ok = validator.is_valid(orjson.loads(raw))
    try:
        decode_event(raw)
    except EventRejected:
        return schema_ok, False
    return schema_ok, True


ACCEPTED: list[tuple[str, bytes]] = [
    ("the first instant", _with(GOOD, "occurred_at", "2000-01-01T00:00:00Z")),
    ("the first instant at +08:00", _with(GOOD, "occurred_at", "2000-01-01T08:00:00+08:00")),
    ("first instant, day before",
     _with(GOOD, "occurred_at", "1999-12-31T10:00:00-14:00")),
    ("the last microsecond", _with(GOOD, "occurred_at", "2099-12-31T23:59:59.999999Z")),
    ("last second, day after", _with(GOOD, "occurred_at", "2100-01-01T13:59:59+14:00")),
    ("offset +14:00", _with(GOOD, "occurred_at", "2050-06-01T00:00:00+14:00")),
    ("offset -14:00", _with(GOOD, "occurred_at", "2050-06-01T00:00:00-14:00")),
    ("offset -09:30", _with(GOOD, "occurred_at", "2050-06-01T00:00:00-09:30")),
    ("lower-case z", _with(GOOD, "occurred_at", "2023-03-15T02:05:00z")),
    ("due_at at the end", _with(ORDER, "data.due_at", "2099-12-31T18:59:59-05:00")),
    ("control characters in a description", _with(GOOD, "data.description", "\x01\x1f\x7f\u2028")),
    ("emoji in a name", _with(VENUE, "data.name", "市场 \U0001f600")),
    ("a counted inspection", _with(INSPECTION, "data.items_checked", 100_000)),
]  # fmt: skip

REJECTED: list[tuple[str, bytes]] = [
    ("year 1", _with(GOOD, "occurred_at", "0001-01-01T00:00:00Z")),
    ("year 1 at +14:00", _with(GOOD, "occurred_at", "0001-01-01T00:00:00+14:00")),
    ("year 9999", _with(GOOD, "occurred_at", "9999-12-31T23:00:00-05:00")),
    ("offset -23:59", _with(GOOD, "occurred_at", "2023-03-15T10:05:00-23:59")),
    ("offset +14:01", _with(GOOD, "occurred_at", "2023-03-15T10:05:00+14:01")),
    ("offset -14:30", _with(GOOD, "occurred_at", "2023-03-15T10:05:00-14:30")),
    ("a second before the first instant", _with(GOOD, "occurred_at", "1999-12-31T23:59:59Z")),
    ("first instant's local time at +08:00",
     _with(GOOD, "occurred_at", "2000-01-01T00:00:00+08:00")),
    ("the end", _with(GOOD, "occurred_at", "2100-01-01T00:00:00Z")),
    ("the end, local year 2099", _with(GOOD, "occurred_at", "2099-12-31T23:00:00-05:00")),
    ("due_at year 1", _with(ORDER, "data.due_at", "0001-01-01T00:00:00Z")),
    ("NUL in source", _with(GOOD, "source", "ly\x00app")),
    ("NUL in description", _with(GOOD, "data.description", "\x00")),
    ("NUL in evidence", _with(GOOD, "data.evidence", ["IMG\x00.jpg"])),
    ("NUL in a person's name", _with(VENUE, "data.first_responsible.name", "王\x00")),
    ("NUL in an officer's name", _with(VENUE, "data.officer", {"name": "张\x00"})),
    ("NUL in an issue id", _with(GOOD, "data.issue_id", "ISS\x00")),
    ("NUL in an order number", _with(ORDER, "data.order_no", "\x00LY")),
    ("NUL in a reason", _with(ORDER, "data.reason", "extended\x00")),
    ("NUL in an inspector", _with(INSPECTION, "data.inspector", "\x00")),
]  # fmt: skip


@pytest.mark.parametrize(("raw"), [pytest.param(raw, id=what) for what, raw in ACCEPTED])
def test_the_schema_and_the_contract_accept(schema_validator: Validator, raw: bytes) -> None:
    assert _both(schema_validator, raw) == (True, True)


@pytest.mark.parametrize(("raw"), [pytest.param(raw, id=what) for what, raw in REJECTED])
def test_the_schema_and_the_contract_reject(schema_validator: Validator, raw: bytes) -> None:
    assert _both(schema_validator, raw) == (False, False)


def test_every_example_event_is_valid_by_the_schema(schema_validator: Validator) -> None:
    lines = (CONTRACTS_DIR / "examples" / "events.jsonl").read_bytes().splitlines()
    assert lines
    for line in lines:
        schema_validator.validate(orjson.loads(line))


def _strings(node: Any) -> Iterator[Json]:
    if isinstance(node, dict):
        if node.get("type") == "string" and "enum" not in node and "const" not in node:
            yield node
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def test_every_string_of_the_schema_excludes_nul_or_is_a_timestamp() -> None:
    strings = list(_strings(envelope_schema()))
    assert len(strings) > 20
    for node in strings:
        if node.get("format") == "date-time":
            assert node["formatExclusiveMaximum"] == END_TEXT
            assert node["description"].endswith(INSTANT_RULE)
        elif node.get("format") == "uuid":
            continue
        else:
            patterns = [node.get("pattern")] + [p.get("pattern") for p in node.get("allOf", [])]
            assert NO_NUL_PATTERN in patterns, node
