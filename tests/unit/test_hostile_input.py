"""Hostile input, generated: events drawn from the contract's own JSON Schemas, valid and
mutated, and the fault suite's hostile messages, through the JSON Schema, ``decode_event`` and
the consumers' decoding.

- An event drawn from its type's published schema is valid by the envelope schema (whose
  ``if``/``then`` selects the type) and accepted by ``decode_event``, which gives back the same
  event from its own wire form.
- A mutated one (each mutation of ``tests/support/hostile.py``: a field missing, of the wrong
  type, extra, empty, out of range, a bad timestamp, UUID or district, too long, NUL, another
  type's body, an unknown type, another schema version, broken JSON, bytes that are not UTF-8,
  too large, a key twice, nesting from shallow to a depth bomb, thousands of unknown keys), and
  any change the
  differential test of ``test_contract_schema.py`` makes, gets the same verdict from both, and
  a rejection names a field: it is set, the reason says it, it is a path of the input or of the
  schema, the schema complains at that path too, and it is the field the mutation changed.
- For a consumer of ``CW_EVENTS``, every message is an event or a rejection naming its field;
  a subject that disagrees with its payload is ``subject_mismatch``; and every message of
  ``hostile_messages`` (what the fault suite sends) is refused.

The JSON Schema judges a JSON value; the bytes before it are judged by the JSON text rules the
contract states (UTF-8, no byte-order mark, no NaN, at most 64 KiB, a nesting depth the parser
reads), and by I-JSON's (RFC 7493)
for an escaped lone surrogate (``"\\ud800"``), which no UTF-8 text can hold: ``decode_event``
refuses it as malformed, while Python's ``json`` would hand the schema a string PostgreSQL could
never store. Deeper runs: ``CW_HOSTILE_EXAMPLES=5000 CW_HOSTILE_COUNT=100000``.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts import MAX_EVENT_BYTES, EventRejected, decode_event, encode_event
from contracts.events import EVENT_TYPES
from contracts.validation import BOM, MAX_LISTED
from services.common.campaign import load_campaign
from services.consumer.decoding import decode_delivery
from services.consumer.model import Delivery, Rejection, StreamEvent
from tests.support.hostile import (
    MUTATIONS,
    SUBJECT_MISMATCH,
    Case,
    hostile_cases,
    hostile_messages,
)
from tests.support.schema_events import (
    TYPE_SCHEMAS,
    campaign_events,
    hostile_count,
    hostile_settings,
    schema_events,
)
from tests.unit.test_contract_schema import EVENT_SCHEMA, _validator, mutants

pytestmark = pytest.mark.unit

Json = dict[str, Any]
CAMPAIGN = load_campaign()
TYPE_VALIDATORS = {t: _validator(s) for t, s in TYPE_SCHEMAS.items()}
SCHEMA_PROPERTIES = frozenset(
    name
    for schema in TYPE_SCHEMAS.values()
    for node in [schema, *schema["$defs"].values()]
    for name in node.get("properties", {})
)
"""Every property name the published schemas know: a missing field is named by one of these."""
SUBJECT = re.compile(r"cw\.events\.[0-9]{6}\.[A-Za-z0-9_-]{1,64}\.[A-Za-z]+")


# --- the two verdicts -------------------------------------------------------------------------


class NotJson(Exception):
    """The bytes are no JSON text a schema validator could be handed."""


def _refuse_constant(name: str) -> Any:
    raise NotJson(f"{name} is not a JSON number")


def json_value(raw: bytes) -> Any:
    """The JSON value of ``raw`` by the contract's rules for the text, or ``NotJson``."""
    if raw[:3] == BOM:
        raise NotJson("byte-order mark")
    try:
        value = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
        # A lone surrogate ("\ud800") is valid JSON grammar but no Unicode text (I-JSON).
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (UnicodeError, ValueError, RecursionError) as exc:
        raise NotJson(str(exc)) from None
    return value


def schema_verdict(raw: bytes) -> tuple[bool, Any]:
    """(the envelope schema accepts the message, its JSON value or ``None``)."""
    try:
        value = json_value(raw)
    except NotJson:
        return False, None
    return len(raw) <= MAX_EVENT_BYTES and EVENT_SCHEMA.is_valid(value), value


SEGMENT = re.compile(r'"(?:[^"\\]|\\.)*"|[^.]+')


def _segments(field: str) -> list[str]:
    # A key that is empty, or holds a dot, a quote or white space, is written as JSON writes
    # it: data."a.b".
    return [json.loads(s) if s.startswith('"') else s for s in SEGMENT.findall(field)]


def _recognisable(field: str, value: Any) -> bool:
    """The field is a path of the input, or ends in a property the schema names (missing)."""
    if field == "(event)":
        return True
    node = value
    for segment in _segments(field):
        if isinstance(node, dict) and segment in node:
            node = node[segment]
        elif isinstance(node, list) and segment.isdigit() and int(segment) < len(node):
            node = node[int(segment)]
        else:
            return segment in SCHEMA_PROPERTIES
    return True


def _schema_paths(value: Any) -> set[tuple[str, ...]]:
    paths: set[tuple[str, ...]] = set()
    stack = list(EVENT_SCHEMA.iter_errors(value))
    while stack:
        error = stack.pop()
        paths.add(tuple(str(p) for p in error.absolute_path))
        stack.extend(error.context or ())
    return paths


def check_rejection(exc: EventRejected, raw: bytes, value: Any, expected: str | None) -> None:
    """A rejection names a field, says it, and the field is where the input and the schema
    (and the mutation, when ``expected`` is given) say the fault is."""
    field = exc.first_field
    assert field, exc
    assert exc.reason.startswith(f"{field}: "), exc.reason
    for error in exc.errors:
        assert error.field and error.reason, error
    assert len(exc.errors) <= MAX_LISTED + 1, "the faults past the first ones are counted"
    if field == "(event)":
        if value is not None:
            # The bytes were JSON: the contract refused the whole, for its size, its shape, or
            # a nesting deeper than it reads (a depth bomb, refused before it is parsed).
            deep = "recursion limit" in exc.reason or "nested too deeply" in exc.reason
            assert len(raw) > MAX_EVENT_BYTES or not isinstance(value, dict) or deep, exc
        return
    assert value is not None, f"bytes that are no JSON text were judged field by field: {exc}"
    assert _recognisable(field, value), f"{field!r} is not a path of {raw[:300]!r}"
    mine = tuple(_segments(field))
    assert any(mine[: len(p)] == p or p[: len(mine)] == mine for p in _schema_paths(value)), (
        f"the schema complains elsewhere than {field}: {_schema_paths(value)}"
    )
    if expected not in (None, "?"):
        assert field == expected or field.startswith(f"{expected}."), (field, expected, exc)


def judge(case: Case) -> None:
    """One message through the schema, ``decode_event`` and the consumers' decoding."""
    schema_ok, value = schema_verdict(case.payload)
    try:
        event = decode_event(case.payload)
    except EventRejected as exc:
        assert not schema_ok, f"the schema accepts what decode_event refuses: {exc}"
        check_rejection(exc, case.payload, value, case.field)
    else:
        assert schema_ok, f"decode_event accepts what the schema refuses: {case.payload[:300]!r}"
        assert case.field in (None, "?", SUBJECT_MISMATCH), (case.mutation, case.payload[:300])
        assert decode_event(encode_event(event)) == event
    prepared = decode_delivery(Delivery(1, case.subject, case.payload, None), CAMPAIGN)
    if isinstance(prepared, Rejection):
        assert prepared.field and prepared.reason and prepared.kind, prepared
        if case.field == SUBJECT_MISMATCH:
            assert (prepared.field, prepared.kind) == (SUBJECT_MISMATCH, "subject_mismatch")
    else:
        assert isinstance(prepared, StreamEvent)
        assert case.field in (None, "?"), (case.mutation, case.payload[:300])


# --- events drawn from the schema ------------------------------------------------------------


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_every_keyword_of_a_published_schema_is_one_the_generator_draws(event_type: str) -> None:
    # from_schema refuses a keyword it does not know, so a new rule cannot be skipped silently.
    assert schema_events(event_type) is not None


@hostile_settings(150)
@given(campaign_events())
def test_an_event_drawn_from_its_schema_is_accepted_everywhere(obj: Json) -> None:
    raw = json.dumps(obj, ensure_ascii=False).encode()
    TYPE_VALIDATORS[obj["event_type"]].validate(obj)
    EVENT_SCHEMA.validate(obj)  # the envelope's if/then selects the same type
    event = decode_event(raw)
    assert decode_event(encode_event(event)) == event
    prepared = decode_delivery(Delivery(1, event.subject, raw, None), CAMPAIGN)
    assert isinstance(prepared, StreamEvent), prepared


@hostile_settings(300)
@given(schema_events(), st.sampled_from(sorted(MUTATIONS)), st.randoms(use_true_random=False))
def test_a_mutated_event_gets_one_verdict_and_a_rejection_names_its_field(
    obj: Json, mutation: str, rng: random.Random
) -> None:
    subject = f"cw.events.{obj['district']}.{obj['venue_id']}.{obj['event_type']}"
    payload, field = MUTATIONS[mutation][1](rng, obj)  # changes obj
    judge(Case(subject, payload, mutation, field))


# --- the fault suite's hostile messages -------------------------------------------------------


def test_hostile_messages_are_the_same_for_the_same_seed() -> None:
    first = hostile_messages(500, seed=11)
    assert first == hostile_messages(500, seed=11)
    assert first != hostile_messages(500, seed=12)
    assert len(first) == 500
    for case in hostile_cases(500, seed=11):
        assert case.subject.startswith("cw.events."), case
        assert not set(case.subject) & set(" *>\t\r\n"), case  # publishable
        assert SUBJECT.fullmatch(case.subject) or case.mutation == "subject_mismatch", case
    # A longer list starts with the shorter one: a count is a prefix, not another draw.
    assert hostile_messages(100, seed=11) == first[:100]


def test_hostile_messages_are_ten_thousand_and_mix_every_mutation() -> None:
    cases = hostile_cases(10_000, seed=1)
    kinds = Counter(c.mutation for c in cases)
    assert set(kinds) == {*MUTATIONS, "valid", "subject_mismatch"}
    assert 0.25 < kinds["valid"] / len(cases) < 0.35
    valid_ids = [json.loads(c.payload)["event_id"] for c in cases if c.mutation == "valid"]
    assert len(set(valid_ids)) == len(valid_ids)


def test_every_hostile_message_is_refused_with_a_field() -> None:
    # What the fault suite sends among its valid events: each one must be dead-lettered.
    for seq, (subject, payload) in enumerate(hostile_messages(2_000, seed=20231125), start=1):
        prepared = decode_delivery(Delivery(seq, subject, payload, None), CAMPAIGN)
        assert isinstance(prepared, Rejection), (subject, payload[:300])
        assert prepared.field and prepared.reason and prepared.kind, prepared


def test_every_hostile_message_is_an_event_or_a_rejection_naming_its_field() -> None:
    for case in hostile_cases(hostile_count(2_000), seed=20261125):
        judge(case)


# --- found on the way, kept -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "field"),
    [("", '""'), ("a.b", '"a.b"'), ("颜色", "颜色")],
    ids=["empty key", "dotted key", "Chinese key"],
)
def test_an_unknown_key_is_named_so_that_it_cannot_be_read_as_another_path(
    key: str, field: str
) -> None:
    # An empty key used to be named "(event)", as if the message as a whole were wrong, and a
    # key "a.b" read as the path a -> b.
    obj = json.loads(next(c.payload for c in hostile_cases(20, seed=3) if c.mutation == "valid"))
    for where, expected in [(obj, field), (obj["data"], f"data.{field}")]:
        where[key] = 1
        raw = json.dumps(obj, ensure_ascii=False).encode()
        with pytest.raises(EventRejected) as caught:
            decode_event(raw)
        assert caught.value.first_field == expected
        assert str(caught.value) == f"{expected}: unknown field (not in the contract)"
        del where[key]


@hostile_settings(300)
@given(schema_events().flatmap(lambda obj: mutants([obj])))
def test_any_change_to_a_drawn_event_gets_one_verdict_and_a_named_field(obj: Any) -> None:
    # The differential test's own mutations (any value anywhere, keys added and removed), on
    # events drawn from the schema rather than on the examples.
    raw = json.dumps(obj, ensure_ascii=False).encode()
    subject = "cw.events.320703.LY-FM-001.IssueFound"
    judge(Case(subject, raw, "any", "?"))


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        ('{"source":"连云区"}'.encode("gb18030"), "not UTF-8 text (byte 0xc1 at offset 11)"),
        (b'{"source":"a\xff"}', "not UTF-8 text (byte 0xff at offset 12)"),
        (rb'{"source":"\ud800"}', "\\ud800 is half of a surrogate pair"),
        (rb'{"source":"\udc00x"}', "\\udc00 is half of a surrogate pair"),
        (rb'{"source":"\ud83d\ude00\ud83d"}', "\\ud83d is half of a surrogate pair"),
    ],
    ids=["GBK", "a stray byte", "high surrogate", "low surrogate", "a pair, then half"],
)
def test_text_that_is_not_unicode_is_said_so(payload: bytes, words: str) -> None:
    # The parser alone said "invalid unicode code point" for GBK, and "unexpected end of hex
    # escape" for a lone surrogate: true, but no help to the publisher's developer.
    with pytest.raises(EventRejected) as caught:
        decode_event(payload)
    assert caught.value.first_field == "(event)"
    assert str(caught.value).startswith(f"(event): malformed JSON: {words}")


def test_thousands_of_faults_are_counted_past_the_first_ones() -> None:
    # 6,000 unknown keys fit in 64 KiB: listing every one took a fifth of a second and wrote a
    # reason of 260 KB, into a log line per message.
    obj = json.loads(next(c.payload for c in hostile_cases(20, seed=3) if c.mutation == "valid"))
    obj.update({f"k{i}": 1 for i in range(6_000)})
    with pytest.raises(EventRejected) as caught:
        decode_event(json.dumps(obj, separators=(",", ":")).encode())
    errors = caught.value.errors
    assert [e.field for e in errors[:MAX_LISTED]] == [f"k{i}" for i in range(MAX_LISTED)]
    assert str(errors[-1]) == f"(event): {6_000 - MAX_LISTED} more faults not listed"
    assert len(errors) == MAX_LISTED + 1
