"""Projection rules that need no database: batch boundaries, time travel, decoding."""

from __future__ import annotations

import asyncio
import itertools
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.upcasting import register_upcaster, unregister_upcaster
from services.consumer.jetstream import stream_seq
from services.projector.adapters.memory import MemoryReadModel
from services.projector.domain.model import Delivery, Rejection
from services.projector.domain.projection import issues_as_of
from services.projector.runner import decode_delivery
from services.projector.service import apply_batch
from tests import factories as f
from tests.read_model_suite import CAMPAIGN, stream

pytestmark = pytest.mark.unit
V = "LY-FM-007"


def lifecycle() -> list[object]:
    t = f.at("2023-03-01 10:00")
    return [
        f.venue(V, t),
        f.recheck_failed(V, "I1", t + timedelta(days=2)),  # before its issue
        f.issue(V, "I1", t),
        f.due(V, "I1", t, t + timedelta(days=5)),
        f.inspection(V, t + timedelta(days=1)),
        f.recheck_passed(V, "I1", t + timedelta(days=6)),  # late
        f.issue(V, "I2", t + timedelta(days=30)),  # rebound
        f.due(V, "I2", t + timedelta(days=30), t + timedelta(days=40)),
        f.due(V, "I2", t + timedelta(days=39), t + timedelta(days=50)),  # extension
        f.recheck_passed(V, "I2", t + timedelta(days=45)),  # on time thanks to it
        f.issue("OTHER", "I3", t + timedelta(days=31)),
    ]


@settings(max_examples=60, deadline=None)
@given(cuts=st.sets(st.integers(1, 10), max_size=10))
def test_where_batches_are_cut_changes_nothing(cuts: set[int]) -> None:
    events = stream(lifecycle())  # type: ignore[arg-type]

    async def run(bounds: list[int]) -> MemoryReadModel:
        store = MemoryReadModel()
        for a, b in zip([0, *bounds], [*bounds, len(events)], strict=True):
            if a < b:
                await apply_batch(store, events[a:b], events[b - 1].seq, CAMPAIGN.rebound_window)
        return store

    whole = asyncio.run(run([])).state
    cut = asyncio.run(run(sorted(cuts))).state
    assert cut.issues == whole.issues
    assert cut.counts == whole.counts
    assert cut.venues == whole.venues
    assert cut.pending == whole.pending == {}
    i1, i2 = whole.issues[(f.DISTRICT, "I1")], whole.issues[(f.DISTRICT, "I2")]
    assert (i1.recheck_failures, i1.closed_on_time, i1.rebound) == (1, False, False)
    assert (i2.rebound, i2.closed_on_time, i2.order_no) == (True, True, "ZG-1")
    counts = whole.counts[(f.DISTRICT, V, "re_review")]
    assert (counts.inspections, counts.issues_found, counts.issues_closed) == (1, 2, 2)
    assert (counts.closed_on_time, counts.rebounds, counts.recheck_failures) == (1, 1, 1)


def test_status_at_a_past_moment_replays_the_same_rules() -> None:
    history = stream(lifecycle())  # type: ignore[arg-type]

    def at(moment: str) -> dict[str, str]:
        rows = issues_as_of(history, f.at(moment), CAMPAIGN.rebound_window)
        return {issue.issue_id: status for issue, status in rows if issue.venue_id == V}

    assert at("2023-02-28 00:00") == {}
    assert at("2023-03-01 10:00") == {"I1": "rectifying"}
    assert at("2023-03-06 11:00") == {"I1": "overdue"}
    assert at("2023-04-05 00:00") == {"I1": "closed", "I2": "rectifying"}
    assert at("2023-04-09 12:00") == {"I1": "closed", "I2": "rectifying"}  # extended
    assert at("2023-04-25 00:00") == {"I1": "closed", "I2": "closed"}


def test_a_subject_that_does_not_match_the_envelope_is_rejected() -> None:
    ev = f.issue(V, "I1", f.at("2023-03-01 10:00"))
    other_district = f"cw.events.320706.{V}.IssueFound"
    got = decode_delivery(Delivery(7, other_district, f.wire(ev), None), CAMPAIGN)
    assert isinstance(got, Rejection)
    assert (got.kind, got.seq) == ("subject_mismatch", 7)
    ok = decode_delivery(Delivery(8, ev.subject, f.wire(ev), None), CAMPAIGN)
    assert not isinstance(ok, Rejection) and ok.phase == "re_review"


def test_an_event_of_a_district_the_campaign_does_not_list_is_rejected() -> None:
    # Projected, it would be a phantom district in every 全部辖区 report.
    ev = f.issue(V, "I1", f.at("2023-03-01 10:00"), district="999999")
    got = decode_delivery(Delivery(7, ev.subject, f.wire(ev), None), CAMPAIGN)
    assert isinstance(got, Rejection)
    assert (got.kind, got.field, got.seq) == ("unknown_district", "district", 7)
    assert "district 999999 is not one of the campaign's districts" in got.reason
    listed = f.issue(V, "I1", f.at("2023-03-01 10:00"), district="320724")
    assert not isinstance(
        decode_delivery(Delivery(8, listed.subject, f.wire(listed), None), CAMPAIGN), Rejection
    )


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        (b"{nope", "malformed_json"),
        (b"[1]", "not_an_object"),
        (b'{"event_type": "Gossip"}', "unknown_event_type"),
        (b"x" * 70_000, "too_large"),
    ],
)
def test_dead_letter_reasons_are_a_small_fixed_set(payload: bytes, kind: str) -> None:
    got = decode_delivery(Delivery(1, f"cw.events.320703.{V}.IssueFound", payload, None), CAMPAIGN)
    assert isinstance(got, Rejection) and got.kind == kind


def test_the_stream_sequence_is_read_from_both_ack_subject_layouts() -> None:
    assert stream_seq("$JS.ACK.CW_EVENTS.projector.1.42.40.1700000000000000000.0") == 42
    assert stream_seq("$JS.ACK.hub.AcC.CW_EVENTS.projector.1.42.40.1700000000000000000.0.x") == 42


def test_an_upcaster_that_crashes_sends_the_event_to_the_dead_letters() -> None:
    raw = f.wire(f.issue(V, "I1", f.at("2023-03-01 10:00"))).replace(
        b'"schema_version":1', b'"schema_version":7'
    )

    def broken(obj: dict[str, object]) -> dict[str, object]:
        raise KeyError("data")

    register_upcaster("*", 7)(broken)
    try:
        got = decode_delivery(Delivery(3, f"cw.events.320703.{V}.IssueFound", raw, None), CAMPAIGN)
    finally:
        unregister_upcaster("*", 7)
    assert isinstance(got, Rejection)
    assert got.kind == "unreadable" and "KeyError" in got.reason


@pytest.mark.parametrize("cuts", [(), (1,), (1, 2)])
def test_a_venue_keeps_its_first_registration_moment_and_its_latest_details(
    cuts: tuple[int, ...],
) -> None:
    """Coverage counts a venue in the phases it was registered before the end of: a second
    registration (in one batch or a later one, or arriving out of order) moves nothing back."""
    events = stream([
        f.venue("LY-FM-001", f.at("2023-02-01 09:00"), name="墟沟农贸市场"),
        f.venue("LY-FM-001", f.at("2026-05-02 09:00"), name="墟沟农贸市场（更名）"),
        f.venue("LY-FM-001", f.at("2023-01-20 09:00"), name="墟沟农贸市场（补录）"),
    ])  # fmt: skip
    store = MemoryReadModel()
    bounds = [0, *cuts, len(events)]

    async def run() -> None:
        for a, b in itertools.pairwise(bounds):
            await apply_batch(store, events[a:b], events[b - 1].seq, CAMPAIGN.rebound_window)

    asyncio.run(run())
    (venue,) = store.state.venues.values()
    assert (venue.name, venue.registered_at) == ("墟沟农贸市场（补录）", f.at("2023-01-20 09:00"))
