"""One way to turn bytes into an event, shared by ``cw publish`` and every consumer.

A rejection always names the field (a dotted path such as ``data.severity``) and the reason, so
the publisher can fix the event and an operator can read the dead-letter entry without a debugger.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from contracts.events import EVENT_TYPES, PATTERN_REASONS, SCHEMA_VERSION, Event
from contracts.rules import (
    NO_NUL_REASON,
    NUL,
    TIMESTAMP_ERROR,
    UUID_ERROR,
    UUID_REASON,
    shown,
    timestamp_problem,
)
from contracts.upcasting import NoUpcaster, upcast

MAX_EVENT_BYTES = 64 * 1024
"""An event is a few hundred bytes; anything this large is a mistake (an embedded photo)."""

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
BOM = b"\xef\xbb\xbf"
_NOT_NUMBERS = re.compile(rb"[:\[,]\s*-?(?:NaN|Infinity)\b")
_LONE_SURROGATE = re.compile(
    rb"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F])"
    rb"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)
_PLAIN_KEY = re.compile(r'[^\s."\\]+')


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


class EventRejected(ValueError):
    """The bytes are not a valid event; ``errors`` says which fields and why."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__("; ".join(str(e) for e in errors))

    @property
    def reason(self) -> str:
        return str(self)

    @property
    def first_field(self) -> str:
        return self.errors[0].field if self.errors else "(event)"


MAX_LISTED = 20
"""Faults a rejection lists; the rest are counted. An event with 6,000 unknown keys (it fits
in 64 KiB) would otherwise cost a reader a fifth of a second and a log line of 260 KB."""


def _field_errors(errors: list[ErrorDetails]) -> list[FieldError]:
    out: list[FieldError] = []
    for err in errors[:MAX_LISTED]:
        loc = list(err["loc"])
        # The discriminated union puts the tag (the event type) first; it is not a field.
        if loc and loc[0] in EVENT_TYPES:
            loc = loc[1:]
        field = ".".join(_segment(p) for p in loc) or "(event)"
        if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            field = "event_type"
        out.append(FieldError(field, plain_reason(err)))
    if len(errors) > MAX_LISTED:
        out.append(FieldError("(event)", f"{len(errors) - MAX_LISTED} more faults not listed"))
    return out


def _segment(part: object) -> str:
    """One step of a field's dotted path. A key that is empty, or holds a dot, a quote or white
    space, is written as JSON writes it (``""``, ``"a.b"``, ``"data "``): otherwise ``""`` reads
    as the whole event, ``a.b`` as a path, and ``data `` as ``data`` once a dead-letter header
    has folded its spaces."""
    text = str(part)
    return shown(text) if isinstance(part, str) and not _PLAIN_KEY.fullmatch(text) else text


def _count(n: object, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def plain_reason(err: ErrorDetails) -> str:
    """One pydantic error in the words of the contract, for a publisher's developer.

    Every kind of error the contract's models can raise has its own sentence (a unit test
    goes through them); pydantic's own message is the fallback for anything new.
    """
    kind = err["type"]
    ctx: dict[str, Any] = dict(err.get("ctx") or {})
    value = err.get("input")
    got = f"(got {shown(value)})"
    pattern = str(ctx.get("pattern", ""))
    if (
        isinstance(value, str)
        and NUL in value
        and kind not in ("union_tag_invalid", "extra_forbidden")
    ):
        return NO_NUL_REASON
    if kind == "union_tag_invalid":
        tag = value.get("event_type") if isinstance(value, dict) else ctx.get("tag")
        return f"unknown event type {shown(tag)}; expected one of {', '.join(EVENT_TYPES)}"
    if kind == "union_tag_not_found":
        return "required field is missing (it says what happened and selects the shape of data)"
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown field (not in the contract)"
    if kind == TIMESTAMP_ERROR or kind.startswith("datetime") or kind == "timezone_aware":
        if kind in ("datetime_parsing", "datetime_from_date_parsing") and isinstance(value, str):
            _, _, detail = str(err["msg"]).partition(", ")
            return f"is not a real date and time ({detail or 'invalid'}) {got}"
        return timestamp_problem(value)
    if kind == "string_pattern_mismatch":
        words = PATTERN_REASONS.get(pattern, "does not have the form the contract asks for")
        return f"{words} {got}"
    if kind == UUID_ERROR or kind.startswith("uuid"):
        return f"{UUID_REASON} {got}"
    if kind == "value_error":
        # Our own validators' messages, without pydantic's "Value error, " prefix.
        return str(ctx.get("error", err["msg"]))
    if kind == "literal_error":
        if err["loc"][-1:] == ("schema_version",):
            return (
                f"version {shown(value)} is not one this reader knows (it reads {SCHEMA_VERSION})"
            )
        # pydantic lists the values as Python writes them ('minor'); JSON writes "minor".
        expected = str(ctx.get("expected", "")).replace("'", '"')
        return f"must be one of {expected} {got}"
    if kind == "string_type":
        return f"must be a string {got}"
    if kind == "string_too_short":
        return "may not be empty"
    if kind == "string_too_long":
        limit = ctx.get("max_length")
        return f"may be at most {_count(limit, 'character', 'characters')} (got {len(str(value))})"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"must be an integer, a JSON number such as 5 {got}"
    if kind == "greater_than_equal":
        return f"must be at least {ctx.get('ge')} {got}"
    if kind == "less_than_equal":
        return f"may be at most {ctx.get('le')} {got}"
    if kind in ("list_type", "tuple_type"):
        return f"must be an array {got}"
    if kind == "too_long":
        limit = ctx.get("max_length")
        return f"may hold at most {_count(limit, 'item', 'items')} (got {ctx.get('actual_length')})"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"must be an object {got}"
    return str(err["msg"])


def _malformed(detail: str) -> EventRejected:
    return EventRejected([FieldError("(event)", f"malformed JSON: {detail}")])


def _json_error(exc: Exception, raw: bytes | str) -> EventRejected:
    """orjson's complaint; NaN and Infinity get a word of their own (they look like numbers)."""
    text = str(exc)
    probe = raw.encode() if isinstance(raw, str) else raw
    if _NOT_NUMBERS.search(probe) or "infinity" in text.lower():
        text += " (NaN, Infinity and numbers beyond the double range are not JSON numbers)"
    return _malformed(text)


def _json_invalid(detail: str, raw: bytes | str) -> str:
    """The parser's complaint, with the cause a publisher can act on when it is the encoding:
    bytes that are not UTF-8 (a system writing GBK), or an escaped lone surrogate."""
    if isinstance(raw, bytes):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return (
                f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); an event "
                f"is UTF-8, not GBK or Latin-1 ({detail})"
            )
    probe = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    lone = _LONE_SURROGATE.search(probe)
    if lone is not None and ("surrogate" in detail or "hex escape" in detail):
        return (
            f"{lone.group().decode()} is half of a surrogate pair, which is no character: "
            f"escape a character outside the BMP as both halves, or write it as it is ({detail})"
        )
    return detail


def _too_large(size: int) -> EventRejected:
    return EventRejected(
        [FieldError("(event)", f"message is {size} bytes; the limit is {MAX_EVENT_BYTES}")]
    )


def decode_event(raw: bytes | str) -> Event:
    """Validate one JSON event; raise ``EventRejected`` naming each bad field.

    Whatever the bytes are (NaN, a depth bomb, invalid UTF-8, a BOM, a year 1 timestamp), the
    only exception that leaves here for bad input is ``EventRejected``.
    """
    if len(raw) > MAX_EVENT_BYTES:
        raise _too_large(len(raw))
    if raw[:3] == BOM or raw[:1] == "\ufeff":
        raise _malformed("starts with a byte-order mark (U+FEFF), which JSON text may not")
    try:
        return EVENT_ADAPTER.validate_json(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False)
        if first and first[0]["type"] == "json_invalid":
            raise _malformed(_json_invalid(str(first[0]["msg"]), raw)) from None
        if not any(e["loc"][-1:] == ("schema_version",) for e in first):
            raise EventRejected(_field_errors(first)) from None
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise _unreadable(exc) from None
    # Slow path: an event at another schema_version is upcast first. orjson is stricter than
    # pydantic's parser (it refuses NaN and Infinity, which are not JSON), so it may refuse here.
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _json_error(exc, raw) from None
    except RecursionError:
        raise _malformed("nested too deeply") from None
    return decode_object(obj)


def decode_object(obj: Any) -> Event:
    """Validate an already-parsed JSON value, upcasting other schema versions."""
    if not isinstance(obj, dict):
        raise EventRejected([FieldError("(event)", "an event is a JSON object")])
    if obj.get("schema_version") != SCHEMA_VERSION:
        try:
            obj = upcast(obj)
        except NoUpcaster as exc:
            raise EventRejected([FieldError("schema_version", str(exc))]) from None
    try:
        # Round-trip through JSON so a Python dict gets exactly the rules a wire message gets
        # (strict mode treats timestamps and UUIDs differently in Python and JSON input).
        wire = orjson.dumps(obj)
    except (orjson.JSONEncodeError, RecursionError) as exc:
        raise EventRejected(
            [FieldError("(event)", f"cannot be written as JSON: {_plain(exc)}")]
        ) from None
    try:
        return EVENT_ADAPTER.validate_json(wire)
    except ValidationError as exc:
        first = exc.errors(include_url=False)
        if first and first[0]["type"] == "json_invalid":
            raise _malformed(str(first[0]["msg"])) from None
        raise EventRejected(_field_errors(first)) from None
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise _unreadable(exc) from None


def _plain(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _unreadable(exc: BaseException) -> EventRejected:
    # Not expected from pydantic; said plainly instead of escaping as a crash.
    return EventRejected([FieldError("(event)", f"cannot be read as an event: {_plain(exc)}")])


def encode_event(event: Event) -> bytes:
    """The canonical wire form of an event."""
    return EVENT_ADAPTER.dump_json(event, exclude_none=True)
