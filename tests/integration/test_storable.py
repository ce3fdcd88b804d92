"""Every event the contract accepts can be stored: the projector's real write path never stalls.

Hypothesis writes events at the edges (any Unicode within the length limits, control
characters, the longest strings, the first and last instants with the widest offsets, optional
fields present or absent), keeps those the contract accepts, and applies them to a real
PostgreSQL read model with ``apply_batch``, as the projector does. Issue events follow their
``IssueFound`` so the issue rows are updated too.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import asyncpg
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts import Event, EventRejected, decode_event, encode_event
from services.common.campaign import load_campaign
from services.common.settings import Settings
from services.projector.adapters.read_model import PostgresReadModel
from services.projector.bootstrap import ensure_read_model
from services.projector.domain.model import StreamEvent
from services.projector.service import apply_batch

pytestmark = pytest.mark.integration

FIRST = datetime(2000, 1, 1, tzinfo=UTC)
END = datetime(2100, 1, 1, tzinfo=UTC)
WIDEST = [timedelta(hours=14), timedelta(hours=-14), timedelta(hours=13, minutes=59)]


def _text(max_size: int, min_size: int = 1) -> st.SearchStrategy[str]:
    """Any Unicode a JSON string can carry, NUL and control characters included, and the
    longest allowed strings (padded to ``max_size`` one time in four)."""
    chars = st.characters(codec="utf-8")
    free = st.text(chars, min_size=min_size, max_size=max_size)
    longest = st.text(chars, min_size=1, max_size=3).map(
        lambda s: (s * max_size)[:max_size] if s.strip() else "x" * max_size
    )
    controls = st.text(st.characters(max_codepoint=0x9F), min_size=min_size, max_size=8)
    return st.one_of(free, free, free, longest, controls)


@st.composite
def instants(draw: Callable[[st.SearchStrategy[Any]], Any]) -> str:
    """RFC 3339 at the range's edges with extreme offsets, or anywhere with any offset."""
    offset = draw(
        st.one_of(
            st.sampled_from(WIDEST),
            st.integers(-14 * 60, 14 * 60).map(lambda m: timedelta(minutes=m)),
        )
    )
    edge = draw(
        st.sampled_from(
            [
                FIRST,
                FIRST + timedelta(microseconds=1),
                END - timedelta(microseconds=1),
                END - timedelta(seconds=1),
                FIRST - timedelta(microseconds=1),
                END,
                # The extremes the contract accepts: dated 1999-12-31 at +14:00 and
                # 2100-01-01 at -14:00.
                FIRST - timedelta(hours=38),
                END + timedelta(hours=38) - timedelta(microseconds=1),
            ]
        )
    )
    anywhere = draw(st.datetimes(datetime(2000, 1, 2), datetime(2099, 12, 30))).replace(tzinfo=UTC)
    moment: datetime = edge if draw(st.booleans()) else anywhere
    return moment.astimezone(timezone(offset)).isoformat()


def _maybe(
    draw: Callable[[st.SearchStrategy[Any]], Any], obj: dict[str, Any], key: str, s: Any
) -> None:
    if draw(st.booleans()):
        obj[key] = draw(s)


IDS = st.from_regex(r"\A[A-Za-z0-9_.:-]{1,64}\Z")
PHONES = st.from_regex(r"\A[0-9+() -]{3,32}\Z")


@st.composite
def histories(draw: Callable[[st.SearchStrategy[Any]], Any]) -> list[dict[str, Any]]:
    """A venue's registration, an inspection, an issue and what follows it, as JSON bytes."""
    district = draw(st.from_regex(r"\A[0-9]{6}\Z"))
    venue_id = draw(st.from_regex(r"\A[A-Za-z0-9_-]{1,64}\Z"))
    issue_id = draw(IDS)

    def envelope(event_type: str, data: dict[str, Any]) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "event_id": "",  # unique per run: set when the history is stored
            "event_type": event_type,
            "schema_version": 1,
            "occurred_at": draw(instants()),
            "source": draw(_text(64)),
            "district": district,
            "venue_id": venue_id,
            "data": data,
        }
        _maybe(draw, obj, "phase", st.sampled_from(["self_check", "re_review", "long_term"]))
        return obj

    def person() -> dict[str, Any]:
        p = {"name": draw(_text(64))}
        _maybe(draw, p, "phone", PHONES)
        return p

    venue: dict[str, Any] = {
        "name": draw(_text(128)),
        "kind": draw(st.sampled_from(["mall_supermarket", "farmers_market", "other"])),
        "first_responsible": person(),
    }
    _maybe(draw, venue, "street", _text(64))
    _maybe(draw, venue, "address", _text(256))
    if draw(st.booleans()):
        venue["officer"] = person()
    inspection: dict[str, Any] = {
        "inspection_id": draw(IDS),
        "kind": draw(st.sampled_from(["self_check", "supervision", "look_back", "re_review"])),
    }
    _maybe(draw, inspection, "inspector", _text(64))
    _maybe(draw, inspection, "items_checked", st.integers(0, 100_000))
    _maybe(draw, inspection, "items_failed", st.integers(0, 100_000))
    issue: dict[str, Any] = {
        "issue_id": issue_id,
        "item_code": draw(st.from_regex(r"\A[A-Z][A-Z0-9]{0,15}(-[A-Z0-9]{1,16}){1,3}\Z")),
        "severity": draw(st.sampled_from(["minor", "major", "critical"])),
    }
    _maybe(draw, issue, "inspection_id", IDS)
    _maybe(draw, issue, "category", _text(64))
    _maybe(draw, issue, "description", _text(2000))
    _maybe(draw, issue, "evidence", st.lists(_text(256), max_size=50))
    due: dict[str, Any] = {
        "issue_id": issue_id,
        "order_no": draw(_text(64)),
        "due_at": draw(instants()),
    }
    _maybe(draw, due, "assignee", _text(64))
    _maybe(draw, due, "reason", _text(2000))
    recheck: dict[str, Any] = {"issue_id": issue_id}
    _maybe(draw, recheck, "inspection_id", IDS)
    _maybe(draw, recheck, "note", _text(2000))
    passed = dict(recheck)
    _maybe(draw, passed, "note", _text(2000))
    history = [
        envelope("VenueRegistered", venue),
        envelope("InspectionRecorded", inspection),
        envelope("IssueFound", issue),
        envelope("RectificationDue", due),
        envelope("RecheckFailed", recheck),
        envelope("RecheckPassed", passed),
    ]
    if draw(st.booleans()):
        # An issue event before its IssueFound waits in pending_issue_events.
        history[2], history[3] = history[3], history[2]
    return history


@dataclass
class Tally:
    stored: int = 0
    rejected: int = 0
    fields: set[str] = field(default_factory=set)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[PostgresReadModel]:
    await ensure_read_model(Settings(database_url=database_url))
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    assert pool is not None
    try:
        yield PostgresReadModel(pool)
    finally:
        await pool.close()


def _accepted(raw: bytes, tally: Tally) -> Event | None:
    try:
        event = decode_event(raw)
        again = decode_event(encode_event(event))
    except EventRejected as exc:
        tally.rejected += 1
        tally.fields.add(exc.first_field)
        return None
    assert again == event
    return event


async def test_every_event_the_contract_accepts_is_stored(store: PostgresReadModel) -> None:
    campaign = load_campaign()
    window = campaign.rebound_window
    seqs = itertools.count(1)
    tally = Tally()

    loop = asyncio.get_running_loop()

    @settings(
        max_examples=30,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(histories())
    def check(history: list[dict[str, Any]]) -> None:
        batch = []
        for obj in history:
            raw = orjson.dumps({**obj, "event_id": str(uuid.uuid4())})
            event = _accepted(raw, tally)
            if event is None:
                continue
            phase = event.phase or campaign.phase_of(event.occurred_at)
            se = StreamEvent(
                seq=next(seqs), event=event, raw=raw, subject=event.subject, phase=phase
            )
            batch.append(se)
        through = next(seqs)
        # Hypothesis drives a plain function; the batch runs on the test's loop, with its pool.
        applied = asyncio.run_coroutine_threadsafe(
            apply_batch(store, batch, through, window), loop
        ).result()
        assert applied.checkpoint == through
        # Examples share the database, so an issue id can come back at another venue: that is
        # refused by a domain rule (venue_mismatch), not for want of storage.
        assert {r.kind for r in applied.refused} <= {"venue_mismatch"}
        assert applied.applied + len(applied.refused) == len(batch)
        tally.stored += applied.applied

    await asyncio.to_thread(check)
    # The run stored events of every shape, and met what the contract refuses on the way.
    assert tally.stored > 60
    assert tally.rejected > 0
