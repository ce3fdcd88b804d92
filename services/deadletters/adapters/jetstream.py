"""Every NATS call of ``cw dlq``: reading and removing dead letters, putting events back."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import PubAck
from nats.js.errors import NotFoundError

from contracts.wire import INTAKE_STAGE, dead_letter_stage
from services.common.connect import NatsAccess, connect_command
from services.common.deadletters import MSG_ID, DeadLetter
from services.common.refusals import Refusals
from services.common.streams import (
    DEAD_LETTERS_STREAM,
    DEAD_LETTERS_SUBJECTS,
    EVENTS_STREAM,
    dead_letter_subject,
)
from services.deadletters.domain.rules import StoredMessage

log = logging.getLogger(__name__)

STREAM_NOT_FOUND = 10059
"""JetStream's error code for a missing stream (a missing message is 10037)."""


def _missing(stream: str) -> str:
    return f"stream {stream} does not exist: run `cw init` first"


class StreamMissing(RuntimeError):
    """``CW_DEAD_LETTERS`` or ``CW_EVENTS`` does not exist."""


@dataclass(frozen=True, slots=True)
class DeadLetterCounts:
    total: int
    by_subject: dict[str, int]

    def by_stage(self) -> dict[str, int]:
        """The intake's of every district together."""
        out: dict[str, int] = {}
        for subject, n in self.by_subject.items():
            stage = dead_letter_stage(subject)
            out[stage] = out.get(stage, 0) + n
        return out

    def of_stage(self, stage: str) -> int:
        return self.by_stage().get(stage, 0)


async def connect(url: NatsAccess | str, refusals: Refusals | None = None) -> Client:
    """Connect, failing within seconds when the server is not there."""
    return await connect_command(url, name="cw-dlq", on_refusal=refusals)


class DeadLetterStore:
    """``CW_DEAD_LETTERS``, read by sequence number."""

    def __init__(self, js: JetStreamContext, stream: str = DEAD_LETTERS_STREAM) -> None:
        self._js = js
        self._stream = stream

    async def counts(self) -> DeadLetterCounts:
        try:
            info = await self._js.stream_info(self._stream, subjects_filter=DEAD_LETTERS_SUBJECTS)
        except NotFoundError:
            raise StreamMissing(_missing(self._stream)) from None
        return DeadLetterCounts(info.state.messages, dict(info.state.subjects or {}))

    async def list(self, *, stage: str | None, limit: int, after: int = 0) -> list[DeadLetter]:
        """The oldest ``limit`` dead letters after sequence ``after``, of one stage or all."""
        # The intake's are on cw.dlq.intake.<district> (older ones on cw.dlq.intake): no one
        # subject filter matches both, so they are picked from all by their subject's stage.
        by_subject = stage is not None and stage != INTAKE_STAGE
        subject = dead_letter_subject(stage) if stage and by_subject else DEAD_LETTERS_SUBJECTS
        out: list[DeadLetter] = []
        seq = after + 1
        while len(out) < limit:
            try:
                raw = await self._js.get_msg(self._stream, seq=seq, subject=subject, next=True)
            except NotFoundError as exc:
                if exc.err_code == STREAM_NOT_FOUND:
                    raise StreamMissing(_missing(self._stream)) from None
                break  # no more
            letter = _letter(raw.seq, raw.subject, raw.data, raw.headers)
            if stage is None or dead_letter_stage(letter.subject) == stage:
                out.append(letter)
            seq = letter.seq + 1
        return out

    async def get(self, seq: int) -> DeadLetter | None:
        try:
            raw = await self._js.get_msg(self._stream, seq=seq)
        except NotFoundError as exc:
            if exc.err_code == STREAM_NOT_FOUND:
                raise StreamMissing(_missing(self._stream)) from None
            return None
        return _letter(raw.seq, raw.subject, raw.data, raw.headers)

    async def delete(self, seq: int) -> bool:
        try:
            return bool(await self._js.delete_msg(self._stream, seq))
        except NotFoundError:
            return False


def _letter(
    seq: int | None, subject: str | None, data: bytes | None, headers: dict[str, str] | None
) -> DeadLetter:
    return DeadLetter.from_message(seq or 0, subject or "", data or b"", headers)


class EventStream:
    """``CW_EVENTS``, where a replayed event goes."""

    def __init__(self, js: JetStreamContext, stream: str = EVENTS_STREAM) -> None:
        self._js = js
        self._stream = stream

    async def publish(self, subject: str, payload: bytes, msg_id: str) -> PubAck:
        return await self._js.publish(subject, payload, headers={MSG_ID: msg_id})

    async def message_at(self, seq: int) -> StoredMessage | None:
        """The message at ``seq`` in ``CW_EVENTS``, or None when there is none."""
        try:
            raw = await self._js.get_msg(self._stream, seq=seq)
        except NotFoundError:
            return None
        return StoredMessage(seq, raw.subject or "", raw.data or b"", dict(raw.headers or {}))
