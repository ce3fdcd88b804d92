"""The rules every text, timestamp, id and count of the contract follows, in Python and in the
generated JSON Schema alike (a differential test keeps the two saying the same).

PostgreSQL's text cannot hold the NUL character, and its ``timestamptz`` (through asyncpg) cannot
hold an instant that Python cannot convert to UTC. An event that passes the contract must never
stall a reader, so the contract rejects both, with a plain reason.

- ``NoNul()``: a string annotation; rejects ``\\u0000`` before any length or pattern rule.
- ``Instant()``: a timestamp written as RFC 3339 with ``T`` and an offset ``Z`` or ``+08:00``,
  its date from 1999-12-31 to 2100-01-01, its offset within +-14:00, no leap second.
- ``CanonicalUuid()``: a UUID written as 8-4-4-4-12 hexadecimal digits.
- ``Integral()``: an integer, also when written ``5.0`` or ``5e0`` (the same JSON number).

Patterns are written once, for pydantic (Rust's regex engine); ``portable_pattern`` gives the
text the JSON Schema publishes, which reads the same in ECMA-262 (ajv), Python's ``re`` (the
``jsonschema`` library) and Rust (check-jsonschema's regress).
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta
from typing import Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

NUL = "\x00"
NO_NUL_PATTERN = "^[^\\u0000]*$"
"""ECMA-262 (and Python ``re``) pattern of a string without the NUL character."""
NO_NUL_REASON = "may not contain the NUL character (\\u0000)"


def portable_pattern(pattern: str) -> str:
    """``pattern`` as published: its final ``$`` made to mean "end of text" in every engine.

    In ECMA-262 and Rust, ``$`` is the end of the text; in Python's ``re``, which the
    ``jsonschema`` library uses, it also matches before a final newline, so ``"320703\\n"``
    would pass ``^[0-9]{6}$`` there and nowhere else. ``(?!\\n)`` means the same in all three.
    """
    if pattern.endswith("$") and not pattern.endswith("\\$") and pattern != NO_NUL_PATTERN:
        return pattern[:-1] + "(?!\\n)$"
    return pattern


def _reject_nul(value: object) -> object:
    if isinstance(value, str) and NUL in value:
        raise ValueError(NO_NUL_REASON)
    return value


class NoNul:
    """Annotation: the string may not contain NUL.

    A string without a pattern of its own gets ``NO_NUL_PATTERN``, which pydantic-core checks
    in Rust: a Python validator on every string field cost about a fifth of the projector's
    throughput. The contract's own patterns are character classes that admit no NUL (a unit
    test checks each), so they need nothing more. A rejection names NUL whatever rule caught
    it (``contracts.validation``).
    """

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        schema = handler(source)
        if schema.get("type") == "str" and "pattern" not in schema:
            return {**schema, "pattern": NO_NUL_PATTERN}
        if schema.get("type") != "str":
            return core_schema.no_info_before_validator_function(_reject_nul, schema)
        return schema

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        out = handler(schema)
        out["pattern"] = portable_pattern(out.get("pattern", NO_NUL_PATTERN))
        return out


# --- timestamps -------------------------------------------------------------------------------

FIRST_DATE = date(1999, 12, 31)
"""The first date a timestamp may be written with: 2000-01-01T00:00:00Z in the offsets west of
UTC. The years 2000 to 2099 can be written in any offset."""
LAST_DATE = date(2100, 1, 1)
MAX_OFFSET = timedelta(hours=14)
EXAMPLE_TIMESTAMP = "2023-03-15T10:05:00+08:00"
TIMESTAMP_ERROR = "contract_timestamp"
"""The pydantic error type of a text that is not a contract timestamp (``timestamp_problem``
says why)."""

_DATE = "(?:1999-12-31|20[0-9]{2}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])|2100-01-01)"
_TIME = "(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]+)?"
_OFFSET = "(?:[Zz]|[+-](?:(?:0[0-9]|1[0-3]):[0-5][0-9]|14:00))"
INSTANT_PATTERN = f"^{_DATE}[Tt]{_TIME}{_OFFSET}$"
"""RFC 3339 as section 5.6 writes it, narrowed to what every reader and the store can hold.

The format ``date-time`` alone is not enough: ajv-formats also accepts a space for ``T``,
``+08`` and ``+0800``, speedate (pydantic) a missing second and ``_``; only this pattern makes
them agree. The day of the month (30 February) is left to the format checkers."""

INSTANT_RULE = (
    f"Written as RFC 3339 with an offset, such as {EXAMPLE_TIMESTAMP} or 2023-03-15T02:05:00Z "
    "(T between date and time, offset Z or +hh:mm within +-14:00, no leap second); "
    f"the date as written lies from {FIRST_DATE} to {LAST_DATE}, so every instant of the years "
    "2000 to 2099 can be written in any offset."
)

_LOOSE = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})(?P<sep>.?)"
    r"(?:(?P<hm>[0-9]{2}:[0-9]{2})(?::(?P<sec>[0-9]{2})(?P<frac>\.[0-9]*)?)?)?(?P<zone>.*)",
    re.DOTALL,
)
_ZONE = re.compile(r"[Zz]|[+-](?P<hh>[0-9]{2}):(?P<mm>[0-9]{2})")


def shown(value: object, limit: int = 80) -> str:
    """A value as JSON writes it (``"abc"``, ``null``), cut to ``limit`` characters."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def timestamp_problem(value: object) -> str:
    """Why ``value`` is not a contract timestamp, in the words a publisher's developer needs.

    Called only for a rejected value, so it can take its time to find the precise reason.
    """
    got = f"(got {shown(value)})"
    general = f"must be an RFC 3339 timestamp with a UTC offset, such as {EXAMPLE_TIMESTAMP} {got}"
    if not isinstance(value, str):
        return general
    if NUL in value:
        return NO_NUL_REASON
    m = _LOOSE.fullmatch(value)
    if m is None:
        return general
    if not m["sep"] or m["hm"] is None:
        return f"must be a date and a time with a UTC offset, such as {EXAMPLE_TIMESTAMP} {got}"
    if m["sep"] not in "Tt":
        return f'needs a "T" between the date and the time, as in {EXAMPLE_TIMESTAMP} {got}'
    if m["sec"] is None:
        return f"needs the seconds, as in {EXAMPLE_TIMESTAMP} {got}"
    if m["sec"] == "60":
        return (
            "cannot be a leap second (:60), which Python and PostgreSQL cannot hold; "
            f"write :59 instead {got}"
        )
    zone = m["zone"]
    if not zone:
        return f"needs a UTC offset such as +08:00 or Z {got}"
    offset = _ZONE.fullmatch(zone)
    if offset is None:
        return f"needs a UTC offset written Z or +hh:mm, such as +08:00 {got}"
    if offset["hh"] is not None:
        minutes = int(offset["hh"]) * 60 + int(offset["mm"])
        if int(offset["mm"]) > 59 or minutes > MAX_OFFSET // timedelta(minutes=1):
            return f"needs a UTC offset between -14:00 and +14:00 {got}"
    if not FIRST_DATE.isoformat() <= m["date"] <= LAST_DATE.isoformat():
        return (
            f"must be dated from {FIRST_DATE} to {LAST_DATE} as written (the years 2000 to "
            f"2099 in any offset) {got}"
        )
    return general


def _check_python_instant(moment: datetime) -> datetime:
    """The rules of ``INSTANT_PATTERN`` that apply to a datetime made in Python."""
    offset = moment.utcoffset()
    if offset is None:
        raise ValueError(f"needs a UTC offset such as +08:00 (got {moment.isoformat()})")
    if abs(offset) > MAX_OFFSET or offset % timedelta(minutes=1):
        raise ValueError(f"needs a UTC offset between -14:00 and +14:00 (got {moment.isoformat()})")
    if not FIRST_DATE <= moment.date() <= LAST_DATE:
        raise ValueError(f"must be dated from {FIRST_DATE} to {LAST_DATE} as written")
    return moment


class Instant:
    """Annotation: an aware datetime that every reader and PostgreSQL can hold.

    From JSON, the text must match ``INSTANT_PATTERN`` (checked in Rust, before the datetime is
    parsed); a datetime made in Python is checked against the same rules.
    """

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        from_json = core_schema.chain_schema(
            [
                core_schema.custom_error_schema(
                    core_schema.str_schema(pattern=INSTANT_PATTERN, strict=True),
                    custom_error_type=TIMESTAMP_ERROR,
                    custom_error_message="not a contract timestamp",
                ),
                # Lax: the step before hands over a Python str, which strict mode refuses.
                core_schema.datetime_schema(tz_constraint="aware", strict=False),
            ]
        )
        from_python = core_schema.no_info_after_validator_function(
            _check_python_instant, handler(source)
        )
        return core_schema.json_or_python_schema(json_schema=from_json, python_schema=from_python)

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {
            "type": "string",
            "format": "date-time",
            "pattern": portable_pattern(INSTANT_PATTERN),
            "description": INSTANT_RULE,
        }


# --- UUIDs ------------------------------------------------------------------------------------

UUID_PATTERN = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
UUID_ERROR = "contract_uuid"
EXAMPLE_UUID = "6f1c2a9e-8d1b-4c55-9a51-0b7d2f9e3c10"
UUID_REASON = (
    f"must be a UUID written as 8-4-4-4-12 hexadecimal digits, such as {EXAMPLE_UUID} "
    "(no braces, no urn:uuid: prefix)"
)


class CanonicalUuid:
    """Annotation: a UUID written in its canonical text, the only one every reader accepts.

    pydantic alone also takes 32 digits without hyphens, braces and ``urn:uuid:``; the JSON
    Schema format ``uuid`` does not (and ajv-formats takes ``urn:uuid:``), so the text is
    checked against ``UUID_PATTERN`` first.
    """

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        from_json = core_schema.chain_schema(
            [
                core_schema.custom_error_schema(
                    core_schema.str_schema(pattern=UUID_PATTERN, strict=True),
                    custom_error_type=UUID_ERROR,
                    custom_error_message="not a UUID in its canonical text",
                ),
                core_schema.uuid_schema(strict=False),
            ]
        )
        return core_schema.json_or_python_schema(
            json_schema=from_json, python_schema=handler(source)
        )

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"type": "string", "format": "uuid", "pattern": portable_pattern(UUID_PATTERN)}


# --- integers ---------------------------------------------------------------------------------


def _integral(value: object) -> object:
    # JSON has one kind of number: 5.0 and 5e0 are the number 5 to JSON Schema and JavaScript.
    # A float that is not whole stays a float, which the strict int schema then rejects.
    if type(value) is float and value.is_integer():
        return int(value)
    return value


class Integral:
    """Annotation: an integer, also when written as a whole number with a fraction or exponent.

    JSON Schema's ``"type": "integer"`` accepts ``5.0`` (a number with a zero fractional part),
    and to JavaScript ``5.0 === 5``; pydantic's strict mode would reject it. ``true`` and
    ``"5"`` stay rejected everywhere.
    """

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_before_validator_function(_integral, handler(source))


class VersionNumber:
    """Annotation for a ``schema_version``: the JSON number itself, never ``true`` or ``"1"``.

    ``Literal[1]`` alone lets ``true`` through, because it compares equal to 1. ``1.0`` is the
    number 1 in JSON (JSON Schema's ``"const": 1`` and JavaScript agree), so it is accepted.
    """

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_before_validator_function(_version_number, handler(source))


def _version_number(value: object) -> object:
    value = _integral(value)
    if type(value) is not int:
        raise ValueError(f"must be a whole JSON number such as 1, not {shown(value)}")
    return value
