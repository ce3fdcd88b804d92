"""What NATS refused this user, said in one line.

nats-py reports a permissions violation only to the connection's error callback, and the
refused publish or request then waits for an answer that never comes. ``Refusals`` hears them
(``connect_command(..., on_refusal=refusals)``) and ends those waits at once.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import TypeVar

from services.common.connect import Refused
from services.common.runtime import unless_stopped

T = TypeVar("T")
_VIOLATION = re.compile(r'Permissions Violation for (Publish|Subscription) to "?([^"\s]+)', re.I)


class SubjectRefused(Refused):
    """NATS refused this user a subject (its permissions): said in one line, and nothing more
    is sent; waiting or sending again would not change the server's mind.

    nats-py hands the server's words over in lower case: ``subject`` is the subject as it was
    sent when it is known (``as_sent``), else as the server said it."""

    def __init__(self, action: str, subject: str) -> None:
        self.action, self.subject = action, subject
        if action == "subscribe":
            text = (
                "NATS refused to let this user subscribe to its reply inbox: set "
                "CW_NATS_INBOX_PREFIX to the user's own prefix (a district's publisher: "
                "_INBOX_<district>)"
            )
        elif subject.lower().startswith("$js.api."):
            # Stream names are lower-cased by nats-py: name the API, not the subject.
            text = (
                "NATS refused to let this user use the JetStream API: cw init, cw dlq, cw audit, "
                "cw rebuild and cw streams are the operator's"
            )
        else:
            text = f"NATS refused to let this user publish to {subject}: {_why(subject)}"
        super().__init__(text)

    def about(self, subject: str) -> bool:
        return self.subject.lower() == subject.lower()

    def as_sent(self, subject: str) -> SubjectRefused:
        return SubjectRefused(self.action, subject)


def _why(subject: str) -> str:
    subject = subject.lower()
    if subject.startswith("cw.events."):
        return (
            "this publisher may only publish for its own district (check the file's districts, "
            "and the user in CW_NATS_URL or CW_NATS_CREDS)"
        )
    if subject.startswith("cw.dlq.intake."):
        return "this publisher may keep only its own district's rejected lines: set CW_DISTRICT"
    return "this user's permissions do not allow it"


class Refusals:
    """The server's refusals of one connection, as ``connect_command`` hears them
    (``on_refusal``): nats-py only reports them there, and the refused publish or request then
    waits for an answer that never comes. ``race`` and the listeners end that wait at once."""

    def __init__(self) -> None:
        self.first: SubjectRefused | None = None
        self._seen = asyncio.Event()
        self._listeners: list[Callable[[SubjectRefused], None]] = []

    def __call__(self, text: str) -> None:
        found = _VIOLATION.search(text)
        if found is None:
            return
        action = "publish" if found.group(1).lower() == "publish" else "subscribe"
        refused = SubjectRefused(action, found.group(2))
        if self.first is None:
            self.first = refused
        self._seen.set()
        for listener in self._listeners:
            listener(refused)

    def listen(self, listener: Callable[[SubjectRefused], None]) -> None:
        self._listeners.append(listener)

    def forget(self) -> None:
        """A refusal that was expected and dealt with (a stream info the user may not ask)."""
        self.first = None
        self._seen.clear()

    async def race(self, work: Awaitable[T]) -> T:
        """``work``'s result, or ``SubjectRefused`` as soon as the server refuses something."""
        task = asyncio.ensure_future(work)
        if await unless_stopped(task, self._seen):
            return task.result()
        assert self.first is not None
        raise self.first
