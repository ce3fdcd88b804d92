"""Hostile messages for ``cw.events.>``: valid events (``tests/factories.py``) mutated so that
the projector must refuse each one, with a reason. Deterministic for a given seed; every message
has an event id of its own, so none is taken for a duplicate of another."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import orjson

from contracts import encode_event
from tests import factories as f

Mutation = Callable[[dict[str, Any], random.Random], tuple[str | None, bytes]]
"""Change a valid event (as a JSON object) into (the subject to use or None for its own,
the payload)."""

REQUIRED = ("event_id", "event_type", "schema_version", "occurred_at", "district", "venue_id")


def _dumps(obj: object) -> bytes:
    return orjson.dumps(obj)


def _missing(obj: dict[str, Any], rng: random.Random) -> tuple[str | None, bytes]:
    del obj[rng.choice(REQUIRED)]
    return None, _dumps(obj)


def _wrong_type(obj: dict[str, Any], rng: random.Random) -> tuple[str | None, bytes]:
    key, value = rng.choice(
        [("schema_version", "one"), ("occurred_at", 12345), ("data", ["issue"]),
         ("event_id", "not-a-uuid"), ("district", 320703), ("venue_id", None)]
    )  # fmt: skip
    obj[key] = value
    return None, _dumps(obj)


def _bad_data(obj: dict[str, Any], rng: random.Random) -> tuple[str | None, bytes]:
    obj["data"] = rng.choice([{}, {"issue_id": ""}, {"issue_id": "X", "severity": "甚大"}])
    return None, _dumps(obj)


def _bad_json(obj: dict[str, Any], rng: random.Random) -> tuple[str | None, bytes]:
    raw = _dumps(obj)
    return None, rng.choice([raw[: rng.randrange(1, len(raw) - 1)], b"{not json", b"\xff\xfe"])


def _not_an_object(obj: dict[str, Any], rng: random.Random) -> tuple[str | None, bytes]:
    return None, rng.choice([b"[]", b'"IssueFound"', b"42", b"null", b""])


def _wrong_subject(obj: dict[str, Any], rng: random.Random) -> tuple[str | None, bytes]:
    subject = rng.choice(
        [f"cw.events.110101.{obj['venue_id']}.{obj['event_type']}",
         f"cw.events.{obj['district']}.OTHER-VENUE.{obj['event_type']}",
         f"cw.events.{obj['district']}.{obj['venue_id']}.RecheckPassed"]
    )  # fmt: skip
    return subject, _dumps(obj)


MUTATIONS: tuple[Mutation, ...] = (
    _missing, _wrong_type, _bad_data, _bad_json, _not_an_object, _wrong_subject,
)  # fmt: skip


def hostile_messages(count: int, seed: int) -> list[tuple[str, bytes]]:
    """``count`` (subject, payload) pairs for ``cw.events.>`` that no projector may accept."""
    rng = random.Random(seed)
    start = f.at("2023-03-01 09:00")
    out = []
    for i in range(count):
        event_id = uuid.UUID(int=rng.getrandbits(128), version=4)
        valid = f.issue(f"H{i % 31}", f"H{i}", start + timedelta(seconds=i), event_id=event_id)
        obj: dict[str, Any] = orjson.loads(encode_event(valid))
        subject, payload = rng.choice(MUTATIONS)(obj, rng)
        out.append((subject or valid.subject, payload))
    return out
