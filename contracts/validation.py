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

from contracts.events import EVENT_TYPES, PATTERN_REASONS, SCHEMA_VERSION, Event
from contracts.rules import NO_NUL_REASON, NUL
from contracts.upcasting import NoUpcaster, upcast

MAX_EVENT_BYTES = 64 * 1024
"""An event is a few hundred bytes; anything this large is a mistake (an embedded photo)."""

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
BOM = b"\xef\xbb\xbf"
_NOT_NUMBERS = re.compile(rb"[:\[,]\s*-?(?:NaN|Infinity)\b")


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


def _field_errors(exc: ValidationError) -> list[FieldError]:
    out: list[FieldError] = []
    for err in exc.errors(include_url=False):
        loc = list(err["loc"])
        # The discriminated union puts the tag (the event type) first; it is not a field.
        if loc and loc[0] in EVENT_TYPES:
            loc = loc[1:]
        field = ".".join(str(p) for p in loc) or "(event)"
        value = err.get("input")
        if (
            isinstance(value, str)
            and NUL in value
            and err["type"] not in ("union_tag_invalid", "extra_forbidden")
        ):
            reason = NO_NUL_REASON
        elif err["type"] == "union_tag_invalid":
            field = "event_type"
            tag = err.get("ctx", {}).get("tag")
            reason = f"unknown event type {tag!r}; expected one of {', '.join(EVENT_TYPES)}"
        elif err["type"] == "union_tag_not_found":
            field = "event_type"
            reason = "field required"
        elif err["type"] == "extra_forbidden":
            reason = "unknown field (not in the contract)"
        elif err["type"] == "timezone_aware":
            reason = "timestamp needs an offset such as +08:00 (naive timestamps are rejected)"
        elif err["type"] in ("datetime_type", "datetime_parsing", "datetime_from_date_parsing"):
            _, _, detail = str(err["msg"]).partition(", ")
            reason = (
                "must be an RFC 3339 timestamp with an offset, such as 2023-03-15T10:05:00+08:00"
                + (f" ({detail})" if detail else "")
                + f" (got {_shown(value)})"
            )
        elif err["type"] == "value_error":
            # Our own validators' messages, without pydantic's "Value error, " prefix.
            reason = str(err.get("ctx", {}).get("error", err["msg"]))
        elif err["type"] == "literal_error" and loc == ["schema_version"]:
            reason = f"unsupported schema_version {err['input']!r}; this reader knows 1"
        elif err["type"] == "string_pattern_mismatch":
            pattern = str(err.get("ctx", {}).get("pattern", ""))
            words = PATTERN_REASONS.get(pattern, "does not have the form the contract asks for")
            reason = f"{words} (got {_shown(err['input'])})"
        else:
            reason = err["msg"]
        out.append(FieldError(field, reason))
    return out


def _shown(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _malformed(detail: str) -> EventRejected:
    return EventRejected([FieldError("(event)", f"malformed JSON: {detail}")])


def _json_error(exc: Exception, raw: bytes | str) -> EventRejected:
    """orjson's complaint; NaN and Infinity get a word of their own (they look like numbers)."""
    text = str(exc)
    probe = raw.encode() if isinstance(raw, str) else raw
    if _NOT_NUMBERS.search(probe) or "infinity" in text.lower():
        text += " (NaN, Infinity and numbers beyond the double range are not JSON numbers)"
    return _malformed(text)


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
            raise _malformed(str(first[0]["msg"])) from None
        if not any(e["loc"][-1:] == ("schema_version",) for e in first):
            raise EventRejected(_field_errors(exc)) from None
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
        raise EventRejected(_field_errors(exc)) from None
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
