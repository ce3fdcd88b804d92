"""What the intake needs from the outside world, as abstract ports (adapters implement them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from services.intake.domain.lines import Accepted, Rejected

OnAck = Callable[[bool], None]
"""Called once the stream has confirmed a message; the argument says it was a duplicate."""


class NotConfirmed(RuntimeError):
    """The stream did not confirm a message, even after retrying: stop, and say so."""


class IntakeSink(Protocol):
    """Where accepted events and rejected lines go; many messages may be in flight at once."""

    async def publish(self, accepted: Accepted, on_ack: OnAck) -> None:
        """Send the event; return once it is in flight. Raise ``NotConfirmed`` after a failure."""

    async def dead_letter(self, rejected: Rejected, on_ack: OnAck) -> None:
        """Send the rejected line to the dead letters; return once it is in flight."""

    async def drain(self) -> None:
        """Wait until every message sent is confirmed; raise ``NotConfirmed`` if one was not."""
