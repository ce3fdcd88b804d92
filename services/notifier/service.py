"""The notifier's unit of work: one message to one target, within its budget, recorded before
it is sent and after it is answered.

Order of effects, and what a crash at each point leaves:
1. the attempt is recorded (it counts against the budget from now on);
2. the message is sent;
3. refused reminders are put in the dead letters;
4. the answer is recorded: delivered and dead-lettered deliveries are done.
A crash between 1 and 4 leaves the deliveries pending: they are sent again after the restart.
A robot has no idempotency key, so a message it accepted just before the crash is shown twice;
a webhook gets the same ``Idempotency-Key`` again. Nothing else is ever sent twice, because
nothing but this message's deliveries was in flight.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from services.common.retry import RetryPolicy
from services.notifier.domain.alerts import Alert, alert_json, alert_message
from services.notifier.domain.budget import Budget, budget_for
from services.notifier.domain.messages import plan
from services.notifier.domain.model import (
    Delivered,
    Refused,
    SendResult,
    Throttled,
    TryAgain,
    outcome_of,
)
from services.notifier.domain.ports import (
    Clock,
    DeliveryObserver,
    Ledger,
    Refusals,
    Robot,
    Webhook,
)
from services.notifier.domain.targets import Target

PLAN_LIMIT = 500
"""Most pending deliveries read for one message (a merged one holds far fewer)."""
RETRY_AFTER_CAP_S = 3600.0
"""A ``Retry-After`` beyond an hour is read as an hour."""
WEBHOOK_RETRIES = RetryPolicy(first_s=0.5, cap_s=60.0)
"""A webhook that fails is retried until it takes the reminder, at most a minute apart."""
ROBOT_RETRIES = RetryPolicy(first_s=1.0, cap_s=60.0)
MAX_QUEUED_ALERTS = 1000
"""Most alerts kept waiting for one target (in memory): beyond, the oldest are dropped, said in
the log. Alertmanager repeats what is still firing."""

log = logging.getLogger("cw.notifier")


@dataclass
class Dispatch:
    """One target and what delivering to it needs."""

    target: Target
    ledger: Ledger
    refusals: Refusals
    clock: Clock
    observer: DeliveryObserver
    robot: Robot | None = None
    webhook: Webhook | None = None
    failures: int = 0
    """Failed attempts in a row (the retry policy's attempt number)."""
    resume_at: datetime | None = None
    """After a failure: not before then (the backoff, or ``Retry-After``)."""
    alerts: deque[Alert] = field(default_factory=lambda: deque(maxlen=MAX_QUEUED_ALERTS))
    """Alertmanager's alerts waiting for this target (``alerts = true``), sent before
    reminders and within the same budget."""
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    """The campaign's zone: the local time in an alert."""

    @property
    def budget(self) -> Budget:
        t = self.target
        return budget_for(t.kind, t.per_minute, t.window)

    @property
    def retries(self) -> RetryPolicy:
        return ROBOT_RETRIES if self.target.is_robot else WEBHOOK_RETRIES


async def deliver_next(d: Dispatch) -> datetime | None:
    """Send the next message to ``d.target`` if its budget allows.

    Returns when to call again: ``None`` when nothing is waiting (call again when reminders
    arrive), a moment in the future when the budget, a throttle or a backoff says to wait.
    """
    budget = d.budget
    now = d.clock.now()
    if d.resume_at is not None and d.resume_at > now:
        return d.resume_at
    attempts = await d.ledger.attempts(d.target.name, now - budget.lookback)
    start = budget.next_start(attempts, now)
    if start > now:
        return start
    if d.alerts:
        return await _send_alert(d, d.alerts[0], now)
    # A webhook takes one reminder per request; a robot's next message may merge many.
    pending = await d.ledger.pending(d.target.name, PLAN_LIMIT if d.target.is_robot else 1)
    if not pending:
        return None
    send: Callable[[], Awaitable[SendResult]]
    if d.target.is_robot:
        assert d.robot is not None
        robot = d.robot
        per_minute = d.target.per_minute or PLAN_LIMIT
        message = plan(pending, budget.free(attempts, now), per_minute, robot.format)
        if len(message.reminder_ids) == len(pending) < PLAN_LIMIT:
            # Everything waiting fits in this message: no need to hurry past the pace.
            paced = budget.paced_start(attempts, now)
            if paced > now:
                return paced
        chosen = set(message.reminder_ids)
        batch = [p for p in pending if p.reminder_id in chosen]

        async def send() -> SendResult:
            return await robot.send(message)
    else:
        assert d.webhook is not None
        webhook, batch = d.webhook, pending[:1]

        async def send() -> SendResult:
            return await webhook.send(batch[0])

    ids = [p.reminder_id for p in batch]
    attempt = await d.ledger.begin(d.target.name, ids, now)
    result = await send()
    if isinstance(result, Refused):
        for p in batch:
            await d.refusals.publish(p, d.target, result)
    finished = d.clock.now()
    outcome = outcome_of(result)
    await d.ledger.finish(
        d.target.name, attempt, ids, outcome=outcome, detail=_detail(result), finished_at=finished
    )
    d.observer.delivered(d.target.kind, outcome, len(batch))
    if outcome == "delivered" and len(batch) > 1:
        d.observer.merged(d.target.kind)
    return _after(d, result, finished)


def _after(d: Dispatch, result: SendResult, finished: datetime) -> datetime:
    """When to try again after ``result``: a backoff after a fault that can pass."""
    if isinstance(result, TryAgain):
        d.failures += 1
        pause = d.retries.pause(d.failures)
        if result.retry_after_s is not None:
            pause = max(pause, min(result.retry_after_s, RETRY_AFTER_CAP_S))
        d.resume_at = finished + timedelta(seconds=pause)
        return d.resume_at
    d.failures, d.resume_at = 0, None
    return finished


async def _send_alert(d: Dispatch, alert: Alert, now: datetime) -> datetime:
    """One alert, recorded as an attempt of the target like any message (so that it counts
    against the robot's budget, also across a restart); it leaves the queue once the target
    took it or refused it for good."""
    send: Callable[[], Awaitable[SendResult]]
    if d.target.is_robot:
        assert d.robot is not None
        robot, message = d.robot, alert_message(alert, d.zone, d.robot.format)

        async def send() -> SendResult:
            return await robot.send(message)
    else:
        assert d.webhook is not None
        webhook, body = d.webhook, alert_json(alert, d.zone)

        async def send() -> SendResult:
            return await webhook.send_alert(body, alert.key)

    attempt = await d.ledger.begin(d.target.name, [], now)
    result = await send()
    finished = d.clock.now()
    outcome = outcome_of(result)
    await d.ledger.finish(
        d.target.name, attempt, [], outcome=outcome, detail=_detail(result), finished_at=finished
    )
    d.observer.alerted(d.target.kind, outcome)
    if isinstance(result, (Delivered, Refused)):
        if d.alerts and d.alerts[0] is alert:
            d.alerts.popleft()
        if isinstance(result, Refused):
            log.warning("target %s refused alert %s (%s): %s", d.target.name, alert.name,
                        alert.status, _detail(result))  # fmt: skip
    return _after(d, result, finished)


def _detail(result: SendResult) -> str:
    if isinstance(result, Delivered):
        return ""
    if isinstance(result, (TryAgain, Throttled)):
        return result.reason
    return f"{result.kind}: {result.reason}"
