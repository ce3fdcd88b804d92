"""The notifier's loops: the intake (the consumer kit's loop on ``CW_REMINDERS``, recording a
delivery per reminder and matching target) and one dispatcher per target (sending what waits,
within the target's budget).

The intake acknowledges a batch once its deliveries and the checkpoint are committed: from then
on PostgreSQL holds every (reminder, target) delivery until it is done, and a crash loses
nothing. Dispatchers are woken when deliveries arrive and otherwise sleep until their budget,
a throttle or a backoff lets them send again: no polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TypeVar
from uuid import UUID

from pydantic import ValidationError

from contracts.reminders import Reminder, reminder_subject
from services.common.retry import FOREVER, RetryPolicy, retry
from services.consumer.loop import Consumer
from services.consumer.model import Delivery, Outcome, Rejection, Tracked
from services.consumer.ports import DeadLetters, Fenced, Observer, Source, Writer
from services.notifier.domain.alerts import Alert, AlertsInvalid, parse_alerts
from services.notifier.domain.budget import Attempt
from services.notifier.domain.model import (
    Outcome as DeliveryOutcome,
)
from services.notifier.domain.model import (
    Pending,
    Recorded,
    Refused,
    StreamReminder,
)
from services.notifier.domain.ports import Ledger, Refusals
from services.notifier.domain.targets import Target
from services.notifier.service import Dispatch, deliver_next

log = logging.getLogger("cw.notifier")
T = TypeVar("T")


def decode_reminder(d: Delivery) -> StreamReminder | Rejection:
    try:
        reminder = Reminder.model_validate_json(d.data)
    except ValidationError as exc:
        first = exc.errors()[0] if exc.errors() else None
        if first is not None and first["type"] == "json_invalid":
            return Rejection(d, f"malformed JSON: {first['msg']}", "(reminder)", "malformed_json")
        where = ".".join(str(p) for p in first["loc"]) if first else "(reminder)"
        reason = f"{where}: {first['msg']}" if first else str(exc)
        return Rejection(d, reason, where or "(reminder)", "invalid_field")
    expected = reminder_subject(reminder.district, reminder.venue_id, reminder.kind)
    if d.subject != expected:
        return Rejection(
            d,
            f"subject {d.subject} does not match the reminder (expected {expected})",
            "district/venue_id/kind",
            "subject_mismatch",
        )
    return StreamReminder(d.seq, reminder, d.data, d.subject, d.headers)


class Intake(Consumer[Recorded, StreamReminder]):
    """``CW_REMINDERS`` into the delivery ledger, exactly once per (reminder, target)."""

    name = "notifier"

    def __init__(
        self,
        source: Source[StreamReminder | Rejection],
        ledger: Ledger,
        targets: Sequence[Target],
        metrics: Observer[Recorded],
        *,
        dead_letters: DeadLetters | None,
        writer: Writer | None = None,
        fetch_wait: timedelta = timedelta(seconds=1),
        on_recorded: Callable[[], None] = lambda: None,
    ) -> None:
        super().__init__(
            source, metrics, dead_letters=dead_letters, writer=writer, fetch_wait=fetch_wait
        )
        self.ledger = ledger
        self.targets = tuple(targets)
        self.on_recorded = on_recorded

    async def tracked(self) -> Tracked:
        return await self.ledger.tracked()

    async def apply(
        self, events: Sequence[StreamReminder], through: Tracked, outcomes: Sequence[Outcome]
    ) -> Recorded:
        added = await self.ledger.record(events, self.targets, through.seq, through.message_id)
        if added:
            self.on_recorded()
        return Recorded(through.seq, len(events), added)

    def merge(self, first: Recorded, second: Recorded) -> Recorded:
        return Recorded(
            max(first.checkpoint, second.checkpoint),
            first.reminders + second.reminders,
            first.deliveries + second.deliveries,
        )


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class Retrying:
    """The ledger and the dead letters with the one retry policy around every call: a server
    that is away holds the dispatcher, it never makes it forget what it sent."""

    def __init__(
        self,
        ledger: Ledger,
        refusals: Refusals,
        on_retry: Callable[[str], None],
        give_up: Callable[[], bool],
        policy: RetryPolicy = FOREVER,
    ) -> None:
        self._ledger, self._refusals = ledger, refusals
        self._on_retry, self._give_up, self._policy = on_retry, give_up, policy

    async def _retry(self, stage: str, attempt: Callable[[], Awaitable[T]]) -> T:
        return await retry(
            stage,
            attempt,
            policy=self._policy,
            never=(Fenced,),
            on_retry=lambda _exc, _pause: self._on_retry(stage),
            give_up=self._give_up,
        )

    async def checkpoint(self) -> int:
        return await self._retry("database", self._ledger.checkpoint)

    async def tracked(self) -> Tracked:
        return await self._ledger.tracked()  # the kit retries

    async def record(
        self,
        reminders: Sequence[StreamReminder],
        targets: Sequence[Target],
        through_seq: int,
        through_id: str | None = None,
    ) -> int:
        return await self._ledger.record(reminders, targets, through_seq, through_id)

    async def pending(self, target: str, limit: int) -> list[Pending]:
        return await self._retry("database", lambda: self._ledger.pending(target, limit))

    async def attempts(self, target: str, since: datetime) -> list[Attempt]:
        return await self._retry("database", lambda: self._ledger.attempts(target, since))

    async def begin(self, target: str, reminder_ids: Sequence[UUID], started_at: datetime) -> int:
        return await self._retry(
            "database", lambda: self._ledger.begin(target, reminder_ids, started_at)
        )

    async def finish(
        self,
        target: str,
        attempt_id: int,
        reminder_ids: Sequence[UUID],
        *,
        outcome: DeliveryOutcome,
        detail: str,
        finished_at: datetime,
    ) -> None:
        await self._retry(
            "database",
            lambda: self._ledger.finish(
                target, attempt_id, reminder_ids, outcome=outcome, detail=detail,
                finished_at=finished_at,
            ),
        )  # fmt: skip

    async def publish(self, pending: Pending, target: Target, refused: Refused) -> None:
        await self._retry("dead_letters", lambda: self._refusals.publish(pending, target, refused))


class Dispatcher:
    """Delivers to one target until ``stopping`` is set; finishes the message in hand first."""

    def __init__(self, dispatch: Dispatch, stopping: asyncio.Event) -> None:
        self.dispatch = dispatch
        self.stopping = stopping
        self.wake = asyncio.Event()
        self.wake.set()  # deliveries left from before a restart

    async def run(self) -> None:
        d = self.dispatch
        while not self.stopping.is_set():
            self.wake.clear()
            next_at = await deliver_next(d)
            if next_at is None:
                await self._until(self.wake, None)
                continue
            pause_s = (next_at - d.clock.now()).total_seconds()
            if pause_s > 0:
                await self._until(None, pause_s)

    async def _until(self, event: asyncio.Event | None, within_s: float | None) -> None:
        """Until ``event`` (new deliveries) or a stop, or ``within_s`` seconds have passed."""
        waits = [asyncio.ensure_future(self.stopping.wait())]
        if event is not None:
            waits.append(asyncio.ensure_future(event.wait()))
        try:
            await asyncio.wait(waits, timeout=within_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await w


class AlertInbox:
    """Alertmanager's posts (``POST /alerts``, on the HTTP server's thread) handed to the
    dispatchers of the targets with ``alerts = true``, on the event loop. Only the notifier that
    holds the write lock sends (a standby answers 503, and Alertmanager tries again)."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._dispatchers: tuple[Dispatcher, ...] = ()

    def attach(self, dispatchers: Sequence[Dispatcher]) -> None:
        """From now on alerts go to those of ``dispatchers`` whose target takes alerts."""
        self._dispatchers = tuple(d for d in dispatchers if d.dispatch.target.alerts)
        self._loop = asyncio.get_running_loop()

    def detach(self) -> None:
        self._loop = None
        self._dispatchers = ()

    def post(self, body: bytes) -> tuple[int, dict[str, object]]:
        """Alertmanager's webhook body; answers at once (the alerts are sent by the
        dispatchers, within each target's budget)."""
        try:
            alerts, left = parse_alerts(body)
        except AlertsInvalid as exc:
            return 400, {"error": str(exc)}
        loop, dispatchers = self._loop, self._dispatchers
        if loop is None:
            return 503, {"error": "this notifier is not sending (a standby, or stopping)"}
        if not dispatchers:
            return 404, {"error": "no target of the notify file takes alerts (alerts = true)"}
        if left:
            log.warning("%s alerts in one post: the first %s are sent", len(alerts) + left,
                        len(alerts))  # fmt: skip
        loop.call_soon_threadsafe(self._hand_over, dispatchers, alerts)
        return 200, {
            "alerts": len(alerts),
            "targets": [d.dispatch.target.name for d in dispatchers],
        }

    @staticmethod
    def _hand_over(dispatchers: Sequence[Dispatcher], alerts: Sequence[Alert]) -> None:
        for dispatcher in dispatchers:
            dispatcher.dispatch.alerts.extend(alerts)
            dispatcher.wake.set()
