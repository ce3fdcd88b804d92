"""Reminders a target refused for good, in ``cw.dlq.notifier``: the reminder's bytes, the
dead-letter headers every stage writes, and ``Cw-Dlq-Target`` naming the target."""

from __future__ import annotations

from services.common.deadletters import MSG_ID, TARGET
from services.consumer.jetstream import DeadLetterPublisher
from services.consumer.model import Delivery
from services.notifier.domain.model import Pending, Refused
from services.notifier.domain.targets import Target

STAGE = "notifier"


class RefusalsToDeadLetters:
    def __init__(self, publisher: DeadLetterPublisher) -> None:
        self._publisher = publisher

    async def publish(self, pending: Pending, target: Target, refused: Refused) -> None:
        delivery = Delivery(
            pending.seq, pending.subject, pending.raw, {MSG_ID: str(pending.reminder_id)}
        )
        await self._publisher.publish(
            delivery,
            f"{target.kind} target {target.name} refused it: {refused.reason}",
            f"target {target.name}",
            refused.kind,
            {TARGET: target.name},
        )
