"""What the intake needs from the outside world, as abstract ports (adapters implement them)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol
from uuid import UUID

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


class ArchiveUnavailable(RuntimeError):
    """The read model could not be asked (not reachable, not initialised, or it failed)."""


class ReadModelArchive(Protocol):
    """The read model's archive of the events the projector applied (``event_archive``).

    Asked which events of a file it holds already: an event sent again after the stream's
    duplicate window is stored again in ``CW_EVENTS``, and only the archive can tell that the
    projector will skip it."""

    async def held(self, event_ids: Sequence[UUID]) -> Mapping[UUID, bytes]:
        """The archived payload of each of ``event_ids`` the read model holds; raise
        ``ArchiveUnavailable`` when it cannot be asked."""
