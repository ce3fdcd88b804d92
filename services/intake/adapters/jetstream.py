"""Every NATS call of ``cw publish``: a pipelined JetStream publisher and the dead letters.

Publishing one event and waiting for its PubAck before the next costs a round trip per event;
here up to ``window`` publishes are in flight on the one connection, each waiting for its own
PubAck. A publish that fails in a way that can pass (a timeout, a reconnect, a stream leader
election) is sent again after a growing pause: the ``Nats-Msg-Id`` header makes a repeated
publish of a stored event a duplicate, not a second copy.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import nats
import nats.errors
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import PubAck
from nats.js.errors import NoStreamResponseError, NotFoundError, ServiceUnavailableError

from services.common.connect import connect_command
from services.common.deadletters import (
    FILE,
    MSG_ID,
    TRUNCATED,
    dead_letter_headers,
    header_safe,
)
from services.common.retry import RetryPolicy, retry
from services.common.streams import DEAD_LETTERS_STREAM, EVENTS_STREAM, dead_letter_subject
from services.intake.domain.lines import Accepted, Rejected
from services.intake.domain.ports import NotConfirmed, OnAck

log = logging.getLogger(__name__)

STAGE = "intake"

TRANSIENT: tuple[type[BaseException], ...] = (
    asyncio.TimeoutError,  # nats.errors.TimeoutError is one too
    NoStreamResponseError,  # no stream leader at this moment (the streams were checked first)
    ServiceUnavailableError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.OutboundBufferLimitError,
    nats.errors.StaleConnectionError,
)


class StreamsMissing(RuntimeError):
    """A stream ``cw publish`` writes to does not exist."""


PUBLISH_RETRY = RetryPolicy(attempts=10)
"""How often and how patiently a publish is repeated: about a minute in all."""


@dataclass(frozen=True, slots=True)
class Outgoing:
    subject: str
    payload: bytes
    headers: Mapping[str, str]


async def connect(url: str) -> Client:
    """Connect, failing fast when the server is not there; once connected, ride out a restart."""
    return await connect_command(url, name="cw-publish")


async def check_streams(js: JetStreamContext) -> None:
    for name in (EVENTS_STREAM, DEAD_LETTERS_STREAM):
        try:
            await js.stream_info(name)
        except NotFoundError:
            raise StreamsMissing(f"stream {name} does not exist: run `cw init` first") from None


class PipelinedPublisher:
    """Keeps up to ``window`` publishes in flight; each is repeated until confirmed or hopeless."""

    def __init__(
        self,
        js: JetStreamContext,
        *,
        window: int = 256,
        ack_timeout_s: float = 5.0,
        backoff: RetryPolicy = PUBLISH_RETRY,
    ) -> None:
        if window < 1:
            raise ValueError("window must be at least 1")
        self._js = js
        self._slots = asyncio.Semaphore(window)
        self._ack_timeout_s = ack_timeout_s
        self._backoff = backoff
        self._tasks: set[asyncio.Task[None]] = set()
        self._failure: NotConfirmed | None = None
        self.unconfirmed = 0

    async def submit(self, message: Outgoing, on_ack: Callable[[PubAck], None]) -> None:
        """Return once ``message`` is in flight; wait while the window is full."""
        if self._failure is not None:
            raise self._failure
        await self._slots.acquire()
        task = asyncio.create_task(self._deliver(message, on_ack))
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._slots.release()

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks))
        if self._failure is not None:
            raise self._failure

    async def _deliver(self, message: Outgoing, on_ack: Callable[[PubAck], None]) -> None:
        def publish() -> Awaitable[PubAck]:
            return self._js.publish(
                message.subject,
                message.payload,
                timeout=self._ack_timeout_s,
                headers=dict(message.headers),
            )

        try:
            ack = await retry(
                f"publish to {message.subject}", publish, policy=self._backoff, only=TRANSIENT
            )
        except TRANSIENT as exc:
            self._fail(
                message, f"no confirmation after {self._backoff.attempts} attempts ({exc!r})"
            )
        except nats.errors.Error as exc:
            self._fail(message, f"{type(exc).__name__}: {exc}")
        else:
            on_ack(ack)

    def _fail(self, message: Outgoing, why: str) -> None:
        self.unconfirmed += 1
        if self._failure is None:
            self._failure = NotConfirmed(f"{message.subject}: {why}")


def event_message(accepted: Accepted) -> Outgoing:
    return Outgoing(accepted.subject, accepted.payload, {MSG_ID: accepted.msg_id})


def dead_letter_message(rejected: Rejected, file_name: str) -> Outgoing:
    headers = dead_letter_headers(
        stage=STAGE,
        reason=rejected.reason,
        field=rejected.field,
        payload=rejected.payload,
        line=rejected.line,
    )
    headers[FILE] = header_safe(file_name, 200)
    if rejected.cut:
        headers[TRUNCATED] = str(rejected.size)
    return Outgoing(dead_letter_subject(STAGE), rejected.payload, headers)


class JetStreamIntake:
    """The intake's sink on JetStream: events to ``CW_EVENTS``, rejections to ``cw.dlq.intake``."""

    def __init__(self, publisher: PipelinedPublisher, *, file_name: str) -> None:
        self._publisher = publisher
        self._file_name = file_name

    async def publish(self, accepted: Accepted, on_ack: OnAck) -> None:
        await self._publisher.submit(event_message(accepted), _duplicate(on_ack))

    async def dead_letter(self, rejected: Rejected, on_ack: OnAck) -> None:
        message = dead_letter_message(rejected, self._file_name)
        await self._publisher.submit(message, _duplicate(on_ack))

    async def drain(self) -> None:
        await self._publisher.drain()


def _duplicate(on_ack: OnAck) -> Callable[[PubAck], None]:
    return lambda ack: on_ack(bool(ack.duplicate))
