"""Events drawn from the contract's own JSON Schemas (``contracts/schema/<Type>.v1.json``).

The strategy reads the published schema, not the pydantic models: a value is drawn for each
keyword the schema uses (``type``, ``const``, ``enum``, ``pattern``, ``minLength``/``maxLength``,
``minimum``/``maximum``, ``items``/``maxItems``, ``anyOf``, ``$ref``, ``required``), and for the
two formats, ``date-time`` and ``uuid``, text that the format checkers accept in every form RFC
3339 and the contract allow. So a keyword the generator does not know fails loudly here
instead of being skipped.

``hypothesis-jsonschema`` would do this in principle, but its release 0.23.1 fails on every
object schema with the hypothesis this project uses (``'many' object has no attribute
'more'``), and it cannot resolve ``$ref`` under a ``urn:`` ``$id``.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from contracts.events import EVENT_TYPES
from contracts.generate import CONTRACTS_DIR
from contracts.rules import NO_NUL_PATTERN
from services.common.campaign import load_campaign

Json = dict[str, Any]
TYPE_SCHEMAS: dict[str, Json] = {
    t: json.loads((CONTRACTS_DIR / "schema" / f"{t}.v1.json").read_text("utf-8"))
    for t in EVENT_TYPES
}
KNOWN = {
    "$schema", "$id", "$defs", "$ref", "title", "description", "examples", "default",
    "type", "const", "enum", "pattern", "format", "minLength", "maxLength", "minimum",
    "maximum", "items", "maxItems", "anyOf", "properties", "required", "additionalProperties",
}  # fmt: skip
"""The keywords this generator honours; any other in a schema is an error here."""

FIRST = datetime(2000, 1, 1, tzinfo=UTC)
END = datetime(2100, 1, 1, tzinfo=UTC)


@st.composite
def instants(draw: st.DrawFn) -> str:
    """A contract timestamp in any of its written forms: the years' edges in the widest
    offsets, ``t``/``z``, fractions of 1 to 9 digits, ``-00:00``."""
    minutes = draw(st.one_of(st.sampled_from([-840, 840, 839, 0]), st.integers(-840, 840)))
    edge = draw(
        st.sampled_from([
            FIRST, END - timedelta(microseconds=1), FIRST - timedelta(hours=14),
            END + timedelta(hours=14) - timedelta(seconds=1),
        ])
    )  # fmt: skip
    anywhere = draw(st.datetimes(datetime(2000, 1, 2), datetime(2099, 12, 30))).replace(tzinfo=UTC)
    local = (edge if draw(st.booleans()) else anywhere).astimezone(
        timezone(timedelta(minutes=minutes))
    )
    if not datetime(1999, 12, 31).date() <= local.date() <= datetime(2100, 1, 1).date():
        local = anywhere.astimezone(timezone(timedelta(minutes=minutes)))
    text = local.strftime("%Y-%m-%d") + draw(st.sampled_from("Tt")) + local.strftime("%H:%M:%S")
    digits = draw(st.integers(0, 9))
    if digits:
        text += "." + f"{local.microsecond:06d}{draw(st.integers(0, 999)):03d}"[:digits]
    if minutes == 0 and draw(st.booleans()):
        return text + draw(st.sampled_from(["Z", "z", "-00:00"]))
    sign = "-" if minutes < 0 else "+"
    return f"{text}{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


UUID_TEXTS = st.uuids().flatmap(lambda u: st.sampled_from([str(u), str(u).upper()]))
FREE_CHARACTERS = st.characters(codec="utf-8", exclude_characters="\x00")


def _free_text(min_size: int, max_size: int) -> st.SearchStrategy[str]:
    """Any Unicode but NUL, control characters and spaces included, and the longest."""
    free = st.text(FREE_CHARACTERS, min_size=min_size, max_size=min(max_size, 40))
    longest = st.text(FREE_CHARACTERS, min_size=1, max_size=3).map(
        lambda s: (s * max_size)[:max_size]
    )
    return st.one_of(free, free, free, longest)


def _regex(pattern: str) -> str:
    # The published pattern ends in (?!\n)$ for Python's re; \Z says the same to hypothesis.
    return pattern.removesuffix("(?!\\n)$").removesuffix("$").removeprefix("^") + r"\Z"


def _resolve(root: Json, ref: str) -> Json:
    node: Any = root
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    assert isinstance(node, dict)
    return node


def from_schema(node: Json, root: Json) -> st.SearchStrategy[Any]:
    """Values valid by ``node`` (a part of ``root``)."""
    unknown = set(node) - KNOWN
    assert not unknown, f"the generator does not know {unknown}: teach it before trusting it"
    if "$ref" in node:
        return from_schema(_resolve(root, node["$ref"]), root)
    if "anyOf" in node:
        return st.one_of([from_schema(n, root) for n in node["anyOf"]])
    if "const" in node:
        return st.just(node["const"])
    if "enum" in node:
        return st.sampled_from(node["enum"])
    kind = node.get("type")
    if kind == "null":
        return st.none()
    if kind == "string":
        return _string(node)
    if kind == "integer":
        return st.integers(node.get("minimum"), node.get("maximum"))
    if kind == "array":
        return st.lists(from_schema(node["items"], root), max_size=node.get("maxItems", 5))
    if kind == "object":
        assert node.get("additionalProperties") is False, node
        props = node["properties"]
        required = set(node.get("required", ()))
        return st.fixed_dictionaries(
            {k: from_schema(v, root) for k, v in props.items() if k in required},
            optional={k: from_schema(v, root) for k, v in props.items() if k not in required},
        )
    raise AssertionError(f"the generator does not know this schema: {node}")


def _string(node: Json) -> st.SearchStrategy[str]:
    if node.get("format") == "date-time":
        return instants()
    if node.get("format") == "uuid":
        return UUID_TEXTS
    assert "format" not in node, node
    pattern = node.get("pattern", NO_NUL_PATTERN)
    lo, hi = node.get("minLength", 0), node.get("maxLength", 10_000)
    if pattern == NO_NUL_PATTERN:
        return _free_text(lo, hi)
    return st.from_regex(_regex(pattern), fullmatch=True).filter(lambda s: lo <= len(s) <= hi)


def schema_events(event_type: str | None = None) -> st.SearchStrategy[Json]:
    """Events valid by their type's published schema; any type when ``event_type`` is None."""
    if event_type is not None:
        schema = TYPE_SCHEMAS[event_type]
        return from_schema(schema, schema)
    return st.sampled_from(EVENT_TYPES).flatmap(schema_events)


CAMPAIGN_DISTRICTS = tuple(d.code for d in load_campaign().names.districts)
"""The shipped campaign's districts: an event of another one is valid, and dead-lettered."""


def campaign_events(event_type: str | None = None) -> st.SearchStrategy[Json]:
    """``schema_events`` in a district of the shipped campaign: events the consumers take (the
    schema allows any six digits; the campaign lists the districts it covers)."""
    return st.tuples(schema_events(event_type), st.sampled_from(CAMPAIGN_DISTRICTS)).map(
        lambda drawn: {**drawn[0], "district": drawn[1]}
    )


def hostile_settings(examples: int) -> settings:
    """The suite's hypothesis settings: ``examples`` and a fixed sequence by default (the same
    inputs in every CI run), or ``CW_HOSTILE_EXAMPLES`` random ones for a deeper local run."""
    deep = os.environ.get("CW_HOSTILE_EXAMPLES")
    return settings(
        max_examples=int(deep) if deep else examples,
        derandomize=not deep,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )


def hostile_count(default: int) -> int:
    """How many ``hostile_messages`` a test sends: ``CW_HOSTILE_COUNT`` for a deeper run."""
    return int(os.environ.get("CW_HOSTILE_COUNT") or default)
