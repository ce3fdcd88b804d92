"""Every NATS call of ``cw publish``: a pipelined JetStream publisher and the dead letters.

Publishing one event and waiting for its PubAck before the next costs a round trip per event;
here nats-py's ``publish_async`` keeps up to ``window`` publishes in flight on the one
connection, each awaiting its own PubAck. A publish that fails in a way that can pass (a
timeout, a reconnect, a stream leader election) is sent again after a growing pause: the
``Nats-Msg-Id`` header makes a repeated publish of a stored event a duplicate, not a second
copy.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

import nats
import nats.errors
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import PubAck
from nats.js.errors import NoStreamResponseError, NotFoundError, ServiceUnavailableError

from contracts.wire import (
    DEAD_LETTERS_STREAM,
    EVENTS_STREAM,
    INTAKE_STAGE,
    intake_dead_letter_subject,
)
from services.common.connect import NatsAccess, connect_command
from services.common.deadletters import (
    FILE,
    MSG_ID,
    TRUNCATED,
    dead_letter_headers,
    header_safe,
)
from services.common.refusals import Refusals, SubjectRefused
from services.common.retry import RetryPolicy, retry
from services.intake.domain.lines import Accepted, Rejected, sender_district
from services.intake.domain.ports import NotConfirmed, OnAck

log = logging.getLogger(__name__)

STAGE = INTAKE_STAGE

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


async def connect(url: NatsAccess | str, refusals: Refusals | None = None) -> Client:
    """Connect, failing fast when the server is not there; once connected, ride out a restart."""
    return await connect_command(url, name="cw-publish", on_refusal=refusals)


async def check_streams(js: JetStreamContext, refusals: Refusals | None = None) -> timedelta | None:
    """Check that the streams exist; return ``CW_EVENTS``'s duplicate window (within it a
    repeated ``Nats-Msg-Id`` is dropped; after it, only the projector knows a repeat).

    ``None`` when this user may not ask (a district's publisher may not use the JetStream API:
    a stream's info would name every district's venues); a missing stream then shows as
    publishes that are not confirmed."""
    refusals = refusals or Refusals()
    windows: dict[str, timedelta] = {}
    for name in (EVENTS_STREAM, DEAD_LETTERS_STREAM):
        try:
            info = await refusals.race(js.stream_info(name))
        except NotFoundError:
            raise StreamsMissing(f"stream {name} does not exist: run `cw init` first") from None
        except SubjectRefused as exc:
            if exc.action != "publish" or not exc.about(f"$JS.API.STREAM.INFO.{name}"):
                raise
            refusals.forget()
            return None
        windows[name] = timedelta(seconds=info.config.duplicate_window or 0)
    return windows[EVENTS_STREAM]


class Publisher(Protocol):
    """Keeps many publishes in flight; ``drain`` waits for all and raises ``NotConfirmed``."""

    async def submit(self, message: Outgoing, on_ack: Callable[[PubAck], None]) -> None: ...

    async def drain(self) -> None: ...


class PublishesAsync(Protocol):
    """The one call ``AsyncPublisher`` makes: nats-py's ``JetStreamContext.publish_async``."""

    async def publish_async(
        self, subject: str, payload: bytes = b"", *, headers: dict[str, str] | None = None
    ) -> asyncio.Future[PubAck]: ...


class AsyncPublisher:
    """nats-py's ``publish_async``, with an ack timeout and the one retry policy around it.

    How many publishes await their PubAck is nats-py's limit: ``publish_async_max_pending`` of
    the ``JetStreamContext`` (``nc.jetstream(publish_async_max_pending=window)``); ``submit``
    waits while it is reached. nats-py sets a failure (no stream, an API error) on the
    publish's future but never times one out, and a future whose write raised is never
    resolved (``publish_async_completed`` would wait for it for ever), so each future here
    gets a deadline and ``drain`` counts what it submitted itself. A failure that can pass is
    published again, by ``retry``, until the policy's attempts (the first one included) run out.
    A subject the server refuses this user (``refusals``) ends it all at once: ``submit`` and
    ``drain`` raise ``SubjectRefused``, and nothing is sent again.
    """

    def __init__(
        self,
        js: PublishesAsync,
        *,
        ack_timeout_s: float = 5.0,
        backoff: RetryPolicy = PUBLISH_RETRY,
        refusals: Refusals | None = None,
    ) -> None:
        self._js = js
        self._ack_timeout_s = ack_timeout_s
        self._backoff = backoff
        self._open = 0
        self._settled = asyncio.Event()
        self._settled.set()
        self._retries: set[asyncio.Task[None]] = set()
        self._failure: NotConfirmed | None = None
        self._refused: SubjectRefused | None = None
        self._in_flight: dict[asyncio.Future[PubAck], Outgoing] = {}
        self.unconfirmed = 0
        if refusals is not None:
            refusals.listen(self._refuse)

    def _refuse(self, refused: SubjectRefused) -> None:
        if self._refused is None:
            sent = (m.subject for m in self._in_flight.values() if refused.about(m.subject))
            subject = next(sent, None)
            self._refused = refused.as_sent(subject) if subject is not None else refused
        for task in self._retries:
            task.cancel()
        # A submit waiting for room among the publishes in flight gets it at once.
        for future in list(self._in_flight):
            future.cancel()
        self._settled.set()

    async def submit(self, message: Outgoing, on_ack: Callable[[PubAck], None]) -> None:
        """Return once ``message`` is in flight; wait while nats-py's pending limit is reached."""
        if self._refused is not None:
            raise self._refused
        if self._failure is not None:
            raise self._failure
        self._open += 1
        self._settled.clear()
        try:
            future = await self._publish(message)
        except TRANSIENT as exc:
            self._again(message, on_ack, exc)
            return
        except nats.errors.Error as exc:
            self._fail(message, f"{type(exc).__name__}: {exc}")
            return
        deadline = asyncio.get_running_loop().call_later(self._ack_timeout_s, future.cancel)
        self._in_flight[future] = message
        future.add_done_callback(lambda done: self._answered(message, on_ack, deadline, done))

    async def drain(self) -> None:
        await self._settled.wait()
        if self._refused is not None:
            raise self._refused
        if self._failure is not None:
            raise self._failure

    def _publish(self, message: Outgoing) -> Awaitable[asyncio.Future[PubAck]]:
        return self._js.publish_async(
            message.subject, message.payload, headers=dict(message.headers)
        )

    def _answered(
        self,
        message: Outgoing,
        on_ack: Callable[[PubAck], None],
        deadline: asyncio.TimerHandle,
        future: asyncio.Future[PubAck],
    ) -> None:
        deadline.cancel()
        self._in_flight.pop(future, None)
        if self._refused is not None:
            return
        if future.cancelled():
            self._again(message, on_ack, TimeoutError())
            return
        exc = future.exception()
        if exc is None:
            on_ack(future.result())
            self._close()
        elif isinstance(exc, TRANSIENT):
            self._again(message, on_ack, exc)
        else:
            self._fail(message, f"{type(exc).__name__}: {exc}")

    def _again(
        self, message: Outgoing, on_ack: Callable[[PubAck], None], first: BaseException
    ) -> None:
        if self._refused is not None:
            return
        task = asyncio.create_task(self._retry(message, on_ack, first))
        self._retries.add(task)
        task.add_done_callback(self._retries.discard)

    async def _retry(
        self, message: Outgoing, on_ack: Callable[[PubAck], None], first: BaseException
    ) -> None:
        failed = [first]

        async def attempt() -> PubAck:
            if failed:  # the attempt that already failed counts as the policy's first one
                raise failed.pop()
            future = await self._publish(message)
            return await asyncio.wait_for(future, self._ack_timeout_s)

        try:
            ack = await retry(
                f"publish to {message.subject}", attempt, policy=self._backoff, only=TRANSIENT
            )
        except TRANSIENT as exc:
            self._fail(
                message, f"no confirmation after {self._backoff.attempts} attempts ({exc!r})"
            )
        except nats.errors.Error as exc:
            self._fail(message, f"{type(exc).__name__}: {exc}")
        else:
            on_ack(ack)
            self._close()

    def _fail(self, message: Outgoing, why: str) -> None:
        self.unconfirmed += 1
        if self._failure is None:
            self._failure = NotConfirmed(f"{message.subject}: {why}")
        self._close()

    def _close(self) -> None:
        self._open -= 1
        if self._open == 0 or self._refused is not None:
            self._settled.set()


def event_message(accepted: Accepted) -> Outgoing:
    return Outgoing(accepted.subject, accepted.payload, {MSG_ID: accepted.msg_id})


def dead_letter_message(
    rejected: Rejected, file_name: str, publisher_district: str | None = None
) -> Outgoing:
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
    subject = intake_dead_letter_subject(sender_district(rejected, publisher_district))
    return Outgoing(subject, rejected.payload, headers)


class JetStreamIntake:
    """The intake's sink on JetStream: events to ``CW_EVENTS``, rejections to
    ``cw.dlq.intake.<district>`` (``district``: the publisher's own, when it is restricted)."""

    def __init__(
        self, publisher: Publisher, *, file_name: str, district: str | None = None
    ) -> None:
        self._publisher = publisher
        self._file_name = file_name
        self._district = district

    async def publish(self, accepted: Accepted, on_ack: OnAck) -> None:
        await self._publisher.submit(event_message(accepted), _duplicate(on_ack))

    async def dead_letter(self, rejected: Rejected, on_ack: OnAck) -> None:
        message = dead_letter_message(rejected, self._file_name, self._district)
        await self._publisher.submit(message, _duplicate(on_ack))

    async def drain(self) -> None:
        await self._publisher.drain()


def _duplicate(on_ack: OnAck) -> Callable[[PubAck], None]:
    return lambda ack: on_ack(bool(ack.duplicate))
