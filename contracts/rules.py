"""What every text and every timestamp of the contract must be, so that the store can hold it.

PostgreSQL's text cannot hold the NUL character, and its ``timestamptz`` (through asyncpg) cannot
hold an instant that Python cannot convert to UTC. An event that passes the contract must never
stall a reader, so the contract rejects both, with a plain reason, and says the same in the
generated JSON Schema for publishers in other languages.

- ``NoNul()``: a string annotation; rejects ``\\u0000`` before any length or pattern rule.
- ``Instant()``: a datetime annotation; 2000-01-01T00:00:00Z <= t < 2100-01-01T00:00:00Z and a
  UTC offset between -14:00 and +14:00.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

NUL = "\x00"
NO_NUL_PATTERN = "^[^\\u0000]*$"
"""ECMA-262 (and Python ``re``) pattern of a string without the NUL character."""
NO_NUL_REASON = "may not contain the NUL character (\\u0000)"

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
"""The first instant the contract accepts."""
END = datetime(2100, 1, 1, tzinfo=UTC)
"""The first instant after the ones the contract accepts."""
MAX_OFFSET = timedelta(hours=14)
EARLIEST_TEXT = "2000-01-01T00:00:00Z"
END_TEXT = "2100-01-01T00:00:00Z"
INSTANT_RULE = (
    f"The instant must lie between {EARLIEST_TEXT} (included) and {END_TEXT} (excluded), "
    "and the UTC offset between -14:00 and +14:00."
)

_OFFSET = "(?:(?:0[0-9]|1[0-3]):[0-5][0-9]|14:00)"
INSTANT_PATTERN = (
    "^(?:"
    f"20[0-9]{{2}}-[0-9]{{2}}-[0-9]{{2}}.*(?:[Zz]|[+-]{_OFFSET})"
    # The edge days: only an offset can bring these local times inside the range.
    f"|1999-12-31.*-{_OFFSET}"
    f"|2100-01-01.*\\+{_OFFSET}"
    ")$"
)
"""A date-time whose local year is 2000-2099 (or the day on either side, with an offset that
may bring it in range) and whose offset is ``Z`` or within +-14:00. The exact instant rule is
``formatMinimum`` / ``formatExclusiveMaximum`` (ajv-formats) and the description."""


def _reject_nul(value: object) -> object:
    if isinstance(value, str) and NUL in value:
        raise ValueError(NO_NUL_REASON)
    return value


class NoNul:
    """Annotation: the string may not contain NUL.

    A string without a pattern of its own gets ``NO_NUL_PATTERN``, which pydantic-core checks
    in Rust: a Python validator on every string field cost about a fifth of the projector's
    throughput. The contract's own patterns are character classes that admit no NUL (a unit
    test checks each). A rejection names NUL whatever rule caught it (``contracts.validation``).
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
        if out.get("pattern") == NO_NUL_PATTERN:
            return out
        if "pattern" in out:
            # An existing pattern stays as it is; both must match.
            out["allOf"] = [*out.get("allOf", []), {"pattern": NO_NUL_PATTERN}]
        else:
            out["pattern"] = NO_NUL_PATTERN
        return out


def _offset_text(offset: timedelta) -> str:
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(offset) // timedelta(minutes=1)
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _shown(moment: datetime) -> str:
    text = moment.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _check_instant(moment: datetime) -> datetime:
    offset = moment.utcoffset()
    if offset is not None and (offset > MAX_OFFSET or offset < -MAX_OFFSET):
        raise ValueError(
            f"needs a UTC offset between -14:00 and +14:00 (got {_offset_text(offset)})"
        )
    if 2000 < moment.year < 2099:
        # Every local time of these years is inside the range whatever the offset (<= 14 h):
        # the common case costs an attribute read instead of comparing aware datetimes.
        return moment
    # Comparing aware datetimes never converts them, so year 1 or 9999 cannot overflow here.
    if not EARLIEST <= moment < END:
        raise ValueError(f"must lie between {EARLIEST_TEXT} and {END_TEXT} (got {_shown(moment)})")
    return moment


class Instant:
    """Annotation: an aware datetime that PostgreSQL can store and Python can convert to UTC."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        # An after validator: a before one would hand the inner schema a Python str, which
        # strict mode does not parse as a datetime. NUL in a timestamp fails its parsing, and
        # the rejection says so (contracts.validation).
        return core_schema.no_info_after_validator_function(_check_instant, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        out = handler(schema)
        out["pattern"] = INSTANT_PATTERN
        out["formatMinimum"] = EARLIEST_TEXT
        out["formatExclusiveMaximum"] = END_TEXT
        out["description"] = INSTANT_RULE
        return out
