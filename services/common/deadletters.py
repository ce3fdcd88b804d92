"""The dead-letter format shared by every stage that rejects input.

A dead letter keeps the original bytes as its payload and the original headers, and adds
``Cw-Dlq-*`` headers saying where it came from and why it was rejected, so that ``cw dlq`` can
show it and put a fixed version back where it belongs. The header names are wire contract
(``contracts/wire.py``, ``DLQ_*``); this module keeps its short names for them.

What a dead letter is, and whose, is read from its subject: NATS decides who may write which
``cw.dlq.*`` subject, while the headers say whatever the writer chose. A district's publisher
may write ``cw.dlq.intake.<district>``, so an intake letter's headers are that district's own
words; only the services write their stages' subjects, so theirs are trusted.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from contracts import wire

MSG_ID = wire.MSG_ID
FIELD = wire.DLQ_FIELD
FILE = wire.DLQ_FILE
ISSUE_VENUE = wire.DLQ_ISSUE_VENUE
KIND = wire.DLQ_KIND
LINE = wire.DLQ_LINE
ORIGINAL_MSG_ID = wire.DLQ_ORIGINAL_MSG_ID
REASON = wire.DLQ_REASON
REJECTED_AT = wire.DLQ_REJECTED_AT
STAGE = wire.DLQ_STAGE
STREAM_SEQ = wire.DLQ_STREAM_SEQ
SUBJECT = wire.DLQ_SUBJECT
TARGET = wire.DLQ_TARGET
TRUNCATED = wire.DLQ_TRUNCATED

MAX_REASON = 2000


def header_safe(text: str, limit: int = MAX_REASON) -> str:
    """NATS headers are single ASCII lines; keep Chinese readable as \\u escapes, cut overlong."""
    flat = json.dumps(" ".join(text.split()), ensure_ascii=True)[1:-1]
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def header_text(value: str) -> str:
    """Undo ``header_safe`` for display."""
    try:
        decoded: str = json.loads(f'"{value}"')
        return decoded
    except ValueError:
        return value


def dead_letter_headers(
    *,
    stage: str,
    reason: str,
    field: str,
    payload: bytes,
    original_headers: Mapping[str, str] | None = None,
    subject: str | None = None,
    stream_seq: int | None = None,
    line: int | None = None,
    kind: str | None = None,
    extra: Mapping[str, str] | None = None,
    now: datetime | None = None,
    key: bytes | None = None,
) -> dict[str, str]:
    """The dead letter's headers. ``key`` (a service's: ``cw.dead_letter_key``) seals the id of a
    letter of a stream message, so that no district can write that id first (``sealed``)."""
    headers = {k: v for k, v in (original_headers or {}).items() if k != MSG_ID}
    if original_headers and MSG_ID in original_headers:
        headers[ORIGINAL_MSG_ID] = original_headers[MSG_ID]
    headers[STAGE] = stage
    headers[REASON] = header_safe(reason)
    headers[FIELD] = header_safe(field, 200)
    headers[REJECTED_AT] = (now or datetime.now(UTC)).isoformat()
    if subject is not None:
        headers[SUBJECT] = subject
    if stream_seq is not None:
        headers[STREAM_SEQ] = str(stream_seq)
        # The same stream message dead-lettered twice (a crash before its ack) is stored once.
        headers[MSG_ID] = f"{stage}:{stream_seq}"
    else:
        digest = hashlib.sha256(payload).hexdigest()[:32]
        headers[MSG_ID] = f"{stage}:{digest}"
    if line is not None:
        headers[LINE] = str(line)
    if kind is not None:
        headers[KIND] = kind
    headers.update(extra or {})
    if stream_seq is not None and TARGET in headers:
        # One reminder refused by several targets: one dead letter each.
        headers[MSG_ID] = f"{stage}:{stream_seq}:{headers[TARGET]}"
    if stream_seq is not None and key is not None:
        headers[MSG_ID] = sealed(headers[MSG_ID], key)
    return headers


def sealed(msg_id: str, key: bytes) -> str:
    """``msg_id`` with an HMAC-SHA256 of it under ``key`` (its first 32 hexadecimal digits).

    ``CW_DEAD_LETTERS`` deduplicates by ``Nats-Msg-Id`` across all its subjects, and a district
    may write any id on its own intake subject: ``projector:<seq>`` it could write first, and
    the projector's letter would be taken for a duplicate and dropped. Without the key, which
    only the services read, the sealed id cannot be written first; with it, the same letter
    published again (a crash before the batch committed) gets the same id and is stored once.
    """
    mac = hmac.new(key, msg_id.encode(), hashlib.sha256).hexdigest()[:32]
    return f"{msg_id}:{mac}"


STREAM_MESSAGE_HEADERS = (SUBJECT, STREAM_SEQ, ISSUE_VENUE, TARGET)
"""What a stage says about the stream message it rejected. The intake rejects lines of a file,
never a stream message: on an intake letter these are claims."""


def false_claims(subject: str, headers: Mapping[str, str]) -> dict[str, str]:
    """The headers of a dead letter on ``subject`` that its subject denies, with what each
    claims: a stage other than the subject's, and, on an intake letter, a stream message it
    would have come from."""
    stage = wire.dead_letter_stage(subject)
    claims: dict[str, str] = {}
    if headers.get(STAGE, stage) != stage:
        claims[STAGE] = headers[STAGE]
    if stage == wire.INTAKE_STAGE:
        claims.update({name: headers[name] for name in STREAM_MESSAGE_HEADERS if name in headers})
    return claims


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A dead letter as read back from ``CW_DEAD_LETTERS``: its stage from its subject, and on
    an intake letter no stream message of origin, whatever the headers claim (``claims``)."""

    seq: int
    subject: str
    stage: str
    reason: str
    field: str
    original_subject: str | None
    original_stream_seq: int | None
    line: int | None
    kind: str | None
    rejected_at: str
    payload: bytes
    headers: Mapping[str, str]
    claims: Mapping[str, str]
    """Headers its subject denies (``false_claims``), kept to be shown, never believed."""

    @classmethod
    def from_message(
        cls, seq: int, subject: str, payload: bytes, headers: Mapping[str, str] | None
    ) -> DeadLetter:
        h = dict(headers or {})
        claims = false_claims(subject, h)
        stream_seq = None if STREAM_SEQ in claims else h.get(STREAM_SEQ)
        line = h.get(LINE)
        return cls(
            seq=seq,
            subject=subject,
            stage=wire.dead_letter_stage(subject),
            reason=header_text(h.get(REASON, "")),
            field=header_text(h.get(FIELD, "")),
            original_subject=None if SUBJECT in claims else h.get(SUBJECT),
            original_stream_seq=int(stream_seq) if stream_seq and stream_seq.isdigit() else None,
            line=int(line) if line and line.isdigit() else None,
            kind=h.get(KIND),
            rejected_at=h.get(REJECTED_AT, ""),
            payload=payload,
            headers=h,
            claims=claims,
        )

    @property
    def district(self) -> str | None:
        """The district whose publisher wrote this intake letter (``cw.dlq.intake.<it>``); None
        for another stage's, and for an intake letter of no known district."""
        return wire.intake_dead_letter_district(self.subject)
