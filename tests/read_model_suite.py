"""One suite of lifecycle rules, run on the in-memory read model and on PostgreSQL."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast
from uuid import UUID, uuid4

import pytest

from contracts import Event
from services.common.campaign import load_campaign
from services.projector.domain.model import Issue, Needs, Refusal, StreamEvent, VenuePhaseCounts
from services.projector.domain.ports import CheckpointRegression, ReadModelStore
from services.projector.service import BatchOutcome, apply_batch
from tests import factories as f

CAMPAIGN = load_campaign()
V = "LY-FM-007"


def stream(events: list[Event], start: int = 1) -> list[StreamEvent]:
    return [
        StreamEvent(seq, ev, f.wire(ev), ev.subject, ev.phase or CAMPAIGN.phase_of(ev.occurred_at))
        for seq, ev in zip(itertools.count(start), events, strict=False)
    ]


class ReadModelSuite:
    store: ReadModelStore

    async def apply(self, batch: list[StreamEvent]) -> BatchOutcome:
        return await apply_batch(
            self.store, batch, max(se.seq for se in batch), CAMPAIGN.rebound_window
        )

    async def issue(self, issue_id: str, district: str = f.DISTRICT) -> Issue | None:
        key = (district, issue_id)
        needs = Needs(frozenset({key}), frozenset(), frozenset(), None)
        async with self.store.unit() as unit:
            return (await unit.load(needs)).issues.get(key)

    async def test_a_later_order_replaces_the_deadline(self) -> None:
        await self.apply(stream([
            f.issue(V, "I1", f.at("2023-03-01 10:00")),
            f.due(V, "I1", f.at("2023-03-01 11:00"), f.at("2023-03-10 18:00"), order_no="A"),
            f.due(V, "I1", f.at("2023-03-09 11:00"), f.at("2023-03-20 18:00"), order_no="B"),
        ]))  # fmt: skip
        issue = await self.issue("I1")
        assert issue is not None
        assert issue.due_at == f.at("2023-03-20 18:00")
        assert issue.order_no == "B"
        assert issue.status(f.at("2023-03-15 00:00")) == "rectifying"
        assert issue.status(f.at("2023-03-21 00:00")) == "overdue"

    async def test_recheck_failed_then_passed_closes_on_time(self) -> None:
        await self.apply(stream([
            f.issue(V, "I1", f.at("2023-03-01 10:00")),
            f.due(V, "I1", f.at("2023-03-01 11:00"), f.at("2023-03-10 18:00")),
            f.recheck_failed(V, "I1", f.at("2023-03-05 10:00")),
            f.recheck_passed(V, "I1", f.at("2023-03-10 18:00")),
        ]))  # fmt: skip
        issue = await self.issue("I1")
        assert issue is not None
        assert (issue.recheck_failures, issue.closed_on_time) == (1, True)
        assert issue.status(f.at("2024-01-01 00:00")) == "closed"

    async def test_closed_after_the_deadline_is_late(self) -> None:
        await self.apply(stream([
            f.issue(V, "I1", f.at("2023-03-01 10:00")),
            f.due(V, "I1", f.at("2023-03-01 11:00"), f.at("2023-03-10 18:00")),
            f.recheck_passed(V, "I1", f.at("2023-03-10 18:01")),
        ]))  # fmt: skip
        issue = await self.issue("I1")
        assert issue is not None and issue.closed_on_time is False

    async def test_closed_without_a_deadline_is_on_time_and_open_before(self) -> None:
        await self.apply(stream([f.issue(V, "I1", f.at("2023-03-01 10:00"))]))
        issue = await self.issue("I1")
        assert issue is not None and issue.status(f.at("2030-01-01 00:00")) == "open"
        await self.apply(stream([f.recheck_passed(V, "I1", f.at("2023-03-02 10:00"))], start=2))
        issue = await self.issue("I1")
        assert issue is not None and issue.closed_on_time is True

    async def test_rebound_inside_the_window_only(self) -> None:
        closed = f.at("2023-03-10 10:00")
        await self.apply(stream([
            f.issue(V, "I1", f.at("2023-03-01 10:00"), item_code="FM-3F"),
            f.recheck_passed(V, "I1", closed),
            f.issue(V, "I2", closed + timedelta(days=89), item_code="FM-3F"),
            f.issue(V, "I3", closed + timedelta(days=91), item_code="FM-3F"),
            f.issue(V, "I4", closed + timedelta(days=10), item_code="FM-PUB"),
            f.issue("OTHER-VENUE", "I5", closed + timedelta(days=10), item_code="FM-3F"),
        ]))  # fmt: skip
        assert [(await self.issue(i)).rebound for i in ("I2", "I3", "I4", "I5")] == [  # type: ignore[union-attr]
            True, False, False, False,
        ]  # fmt: skip

    async def test_rebound_sees_closures_from_earlier_batches(self) -> None:
        await self.apply(stream([
            f.issue(V, "I1", f.at("2023-03-01 10:00")),
            f.recheck_passed(V, "I1", f.at("2023-03-10 10:00")),
        ]))  # fmt: skip
        await self.apply(stream([f.issue(V, "I2", f.at("2023-04-01 10:00"))], start=3))
        issue = await self.issue("I2")
        assert issue is not None and issue.rebound

    async def test_events_before_their_issue_wait_and_then_apply(self) -> None:
        events = stream([
            f.due(V, "I1", f.at("2023-03-01 11:00"), f.at("2023-03-10 18:00")),
            f.recheck_failed(V, "I1", f.at("2023-03-05 10:00")),
            f.recheck_passed(V, "I1", f.at("2023-03-09 10:00")),
            f.issue(V, "I1", f.at("2023-03-01 10:00")),
        ])  # fmt: skip
        outcome = await self.apply(events[:3])
        assert outcome.changes.deferred == 3
        assert await self.issue("I1") is None
        outcome = await self.apply(events[3:])
        assert outcome.changes.resumed == 3
        issue = await self.issue("I1")
        assert issue is not None
        assert (issue.recheck_failures, issue.closed_on_time) == (1, True)

    async def test_waiting_events_within_one_batch(self) -> None:
        await self.apply(stream([
            f.recheck_passed(V, "I1", f.at("2023-03-09 10:00")),
            f.issue(V, "I1", f.at("2023-03-01 10:00")),
        ]))  # fmt: skip
        issue = await self.issue("I1")
        assert issue is not None and issue.closed_at == f.at("2023-03-09 10:00")

    async def test_a_republished_event_changes_nothing(self) -> None:
        failed = f.recheck_failed(V, "I1", f.at("2023-03-05 10:00"))
        await self.apply(stream([f.issue(V, "I1", f.at("2023-03-01 10:00")), failed]))
        outcome = await self.apply(stream([failed, failed], start=3))
        assert (outcome.applied, outcome.duplicates) == (0, 2)
        issue = await self.issue("I1")
        assert issue is not None and issue.recheck_failures == 1
        assert await self.store.checkpoint() == 4

    async def test_a_redelivered_batch_changes_nothing(self) -> None:
        batch = stream([
            f.issue(V, "I1", f.at("2023-03-01 10:00")),
            f.recheck_failed(V, "I1", f.at("2023-03-05 10:00")),
        ])  # fmt: skip
        await self.apply(batch)
        outcome = await self.apply(batch)
        assert (outcome.applied, outcome.already_done) == (0, 2)
        issue = await self.issue("I1")
        assert issue is not None and issue.recheck_failures == 1

    async def test_a_closed_issue_stays_closed(self) -> None:
        await self.apply(stream([
            f.issue(V, "I1", f.at("2023-03-01 10:00")),
            f.recheck_passed(V, "I1", f.at("2023-03-05 10:00")),
            f.recheck_failed(V, "I1", f.at("2023-03-06 10:00")),
            f.due(V, "I1", f.at("2023-03-06 11:00"), f.at("2023-03-08 18:00")),
            f.recheck_passed(V, "I1", f.at("2023-03-07 10:00")),
        ]))  # fmt: skip
        issue = await self.issue("I1")
        assert issue is not None
        assert (issue.closed_at, issue.recheck_failures, issue.due_at) == (
            f.at("2023-03-05 10:00"), 0, None,
        )  # fmt: skip

    async def test_the_first_report_of_an_issue_stands(self) -> None:
        await self.apply(stream([
            f.issue(V, "I1", f.at("2023-03-01 10:00"), severity="minor"),
            f.issue(V, "I1", f.at("2023-03-02 10:00"), severity="critical"),
        ]))  # fmt: skip
        issue = await self.issue("I1")
        assert issue is not None and issue.severity == "minor"

    async def test_issue_ids_are_per_district(self) -> None:
        await self.apply(stream([
            f.issue(V, "I1", f.at("2023-03-01 10:00")),
            f.issue(V, "I1", f.at("2023-03-01 10:00"), district="320706"),
            f.recheck_passed(V, "I1", f.at("2023-03-02 10:00"), district="320706"),
        ]))  # fmt: skip
        here, there = await self.issue("I1"), await self.issue("I1", "320706")
        assert here is not None and here.closed_at is None
        assert there is not None and there.closed_at is not None

    async def refusing(self, batch: list[StreamEvent]) -> tuple[BatchOutcome, list[Refusal]]:
        refused: list[Refusal] = []

        async def refuse(r: Refusal) -> None:
            refused.append(r)

        outcome = await apply_batch(
            self.store, batch, max(se.seq for se in batch), CAMPAIGN.rebound_window,
            refuse=refuse,
        )  # fmt: skip
        return outcome, refused

    async def test_a_follow_up_from_another_venue_is_refused_not_applied(self) -> None:
        _, refused = await self.refusing(stream([
            f.issue("PV-1", "I1", f.at("2023-03-01 10:00")),
            f.recheck_passed("EVIL", "I1", f.at("2023-03-02 10:00")),
        ]))  # fmt: skip
        issue = await self.issue("I1")
        assert issue is not None and issue.closed_at is None
        assert [(r.kind, r.field, r.issue_venue, r.event.seq) for r in refused] == [
            ("venue_mismatch", "venue_id", "PV-1", 2)
        ]
        assert "belongs to venue PV-1, not EVIL" in refused[0].reason

    async def test_a_waiting_follow_up_from_another_venue_is_refused_when_its_issue_comes(
        self,
    ) -> None:
        _, early = await self.refusing(
            stream([f.recheck_passed("EVIL", "I1", f.at("2023-03-02 10:00"))])
        )
        assert early == []
        _, refused = await self.refusing(
            stream([f.issue("PV-1", "I1", f.at("2023-03-01 10:00"))], start=2)
        )
        issue = await self.issue("I1")
        assert issue is not None and issue.closed_at is None
        assert [(r.kind, r.event.seq) for r in refused] == [("venue_mismatch", 1)]

    async def test_an_event_id_reused_with_other_content_is_refused(self) -> None:
        first = f.issue(V, "I1", f.at("2023-03-01 10:00"))
        same = f.issue(V, "I1", f.at("2023-03-01 10:00"), event_id=first.event_id)
        other = f.issue(V, "I9", f.at("2023-03-05 10:00"), event_id=first.event_id)
        await self.refusing(stream([first]))
        outcome, refused = await self.refusing(stream([same, other], start=2))
        assert outcome.duplicates == 1
        assert [(r.kind, r.field, r.event.seq) for r in refused] == [
            ("event_id_reused", "event_id", 3)
        ]
        assert await self.issue("I9") is None
        # Inside one batch too: the first one stands, the changed repeat is refused.
        a = f.issue(V, "I2", f.at("2023-03-01 10:00"))
        b = f.issue(V, "I3", f.at("2023-03-01 10:00"), event_id=a.event_id)
        _, refused = await self.refusing(stream([a, b], start=4))
        assert [(r.kind, r.event.seq) for r in refused] == [("event_id_reused", 5)]
        assert await self.issue("I2") is not None and await self.issue("I3") is None

    async def counts(self, venue_id: str, phase: str) -> VenuePhaseCounts:
        """The stored counters of (venue, phase) in the default district."""
        raise NotImplementedError

    async def test_the_original_deadline_stays_and_extensions_count(self) -> None:
        await self.apply(stream([
            f.issue(V, "I1", f.at("2023-03-01 10:00")),
            f.due(V, "I1", f.at("2023-03-01 11:00"), f.at("2023-03-10 18:00"), order_no="A"),
            f.due(V, "I1", f.at("2023-03-02 11:00"), f.at("2023-03-10 18:00"), order_no="A2"),
        ]))  # fmt: skip
        await self.apply(stream([
            f.due(V, "I1", f.at("2023-03-09 11:00"), f.at("2023-03-20 18:00"), order_no="B"),
            f.recheck_passed(V, "I1", f.at("2023-03-15 10:00")),
            f.due(V, "I1", f.at("2023-03-16 11:00"), f.at("2023-03-30 18:00"), order_no="C"),
        ], start=4))  # fmt: skip
        issue = await self.issue("I1")
        assert issue is not None
        # The same deadline again is no extension; an order after the closing recheck is ignored.
        assert (issue.original_due_at, issue.due_at, issue.extensions) == (
            f.at("2023-03-10 18:00"), f.at("2023-03-20 18:00"), 1,
        )  # fmt: skip
        assert (issue.closed_on_time, issue.closed_on_time_original) == (True, False)

    async def test_inspections_count_by_kind_with_their_items(self) -> None:
        day = f.at("2023-03-01 10:00")
        await self.apply(stream([
            f.inspection(V, day, kind="self_check", items_checked=9, items_failed=2),
            f.inspection(V, day, kind="supervision", items_checked=9, items_failed=0),
            f.inspection(V, day, kind="look_back"),  # no count: adds no item
        ]))  # fmt: skip
        await self.apply(stream([
            f.inspection(V, day, kind="look_back", items_checked=3, items_failed=5),
            f.inspection(V, day, kind="re_review", items_checked=4),
        ], start=4))  # fmt: skip
        n = await self.counts(V, "re_review")
        assert (
            n.inspections, n.inspections_self_check, n.inspections_supervision,
            n.inspections_look_back, n.inspections_re_review, n.items_checked, n.items_failed,
        ) == (5, 1, 1, 2, 1, 25, 5)  # fmt: skip

    def other_consumer(self, name: str) -> ReadModelStore:
        """A store on the same data with the checkpoint of another consumer."""
        raise NotImplementedError

    async def test_each_consumer_has_its_own_checkpoint(self) -> None:
        await self.apply(stream([f.issue(V, "I1", f.at("2023-03-01 10:00"))]))
        reminders = self.other_consumer("reminders")
        assert await reminders.checkpoint() == 0
        async with reminders.unit() as unit:
            await unit.set_checkpoint(42)
        assert await reminders.checkpoint() == 42
        assert await self.store.checkpoint() == 1
        await self.apply(stream([f.issue(V, "I2", f.at("2023-03-01 10:00"))], start=2))
        assert (await self.store.checkpoint(), await reminders.checkpoint()) == (2, 42)

    async def test_a_checkpoint_never_moves_backwards(self) -> None:
        await self.apply(stream([f.issue(V, f"I{i}", f.at("2023-03-01 10:00")) for i in range(5)]))
        with pytest.raises(CheckpointRegression):
            async with self.store.unit() as unit:
                await unit.set_checkpoint(3)
        assert await self.store.checkpoint() == 5
        async with self.store.unit() as unit:
            await unit.set_checkpoint(5)  # the same position again is no regression
        assert await self.store.checkpoint() == 5

    async def test_an_event_type_the_projection_does_not_handle_is_refused(self) -> None:
        later = f.issue(V, "I1", f.at("2023-03-01 11:00"))
        future = StreamEvent(
            1, cast(Event, ReminderAcknowledged(uuid4(), f.DISTRICT, V, f.at("2023-03-01 10:00"))),
            b'{"event_type":"ReminderAcknowledged"}', f"cw.events.{f.DISTRICT}.{V}.Reminder",
            "re_review",
        )  # fmt: skip
        outcome, refused = await self.refusing([future, *stream([later], start=2)])
        assert [(r.kind, r.field, r.event.seq) for r in refused] == [
            ("unhandled_event_type", "event_type", 1)
        ]
        assert "does not handle ReminderAcknowledged" in refused[0].reason
        assert (outcome.applied, outcome.checkpoint) == (1, 2)
        assert await self.issue("I1") is not None


@dataclass(frozen=True)
class ReminderAcknowledged:
    """Stands in for an event type the contract could gain after the projection was written."""

    event_id: UUID
    district: str
    venue_id: str
    occurred_at: datetime
    event_type: str = "ReminderAcknowledged"
    phase: str | None = None
