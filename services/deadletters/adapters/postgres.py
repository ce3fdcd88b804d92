"""Every SQL statement of ``cw dlq``: the archive it checks, the actions it records."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import cast

import asyncpg

from services.common.deadletters import DeadLetter
from services.deadletters.domain.rules import Action, ActionName, ArchivedEvent, acted_since

ARCHIVED = (
    "SELECT stream_seq, subject, payload::text AS payload FROM public.event_archive "
    "WHERE event_id = $1"
)
ACTION_COLUMNS = (
    "stage, dead_letter_seq, original_stream_seq, action, event_id, event_stream_seq, reason, "
    "acted_at"
)
# The first action recorded for a dead letter is the one that counts (see ActionLog.record).
ACTION_OF_LETTER = f"""
SELECT {ACTION_COLUMNS} FROM cw.dead_letter_actions
WHERE stage = $1 AND dead_letter_seq = $2 AND original_stream_seq IS NOT DISTINCT FROM $3
  AND ($4::timestamptz IS NULL OR acted_at >= $4)
ORDER BY id LIMIT 1
"""
LAST_ACTION_OF_SEQ = f"""
SELECT {ACTION_COLUMNS} FROM cw.dead_letter_actions WHERE dead_letter_seq = $1
ORDER BY id DESC LIMIT 1
"""
# Serialises recorders of actions (a few an hour), so that two at once cannot both find no row.
LOCK_ACTIONS = "LOCK TABLE cw.dead_letter_actions IN SHARE ROW EXCLUSIVE MODE"
RECORD_ACTION = f"""
INSERT INTO cw.dead_letter_actions
    (stage, dead_letter_seq, original_stream_seq, action, event_id, event_stream_seq, reason)
VALUES ($1, $2, $3, $4, $5, $6, $7)
RETURNING {ACTION_COLUMNS}
"""


class RecordsMissing(RuntimeError):
    """The read model or ``cw.dead_letter_actions`` does not exist."""


@asynccontextmanager
async def _missing_as_error() -> AsyncIterator[None]:
    try:
        yield
    except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError) as exc:
        raise RecordsMissing(f"{exc}: run `cw init` first") from None


class Archive:
    """The live read model's ``public.event_archive``."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def find(self, event_id: uuid.UUID) -> ArchivedEvent | None:
        async with _missing_as_error():
            row = await self._conn.fetchrow(ARCHIVED, event_id)
        if row is None:
            return None
        return ArchivedEvent(row["stream_seq"], row["subject"], row["payload"].encode())


class ActionLog:
    """``cw.dead_letter_actions``: what operators did with dead letters."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def of_letter(self, letter: DeadLetter) -> Action | None:
        """The action recorded for this dead letter, if any."""
        async with _missing_as_error():
            row = await self._conn.fetchrow(
                ACTION_OF_LETTER,
                letter.stage,
                letter.seq,
                letter.original_stream_seq,
                acted_since(letter),
            )
        return _action(row)

    async def last_of_seq(self, seq: int) -> Action | None:
        """The latest action recorded for dead letter ``seq`` (of whichever stage)."""
        async with _missing_as_error():
            return _action(await self._conn.fetchrow(LAST_ACTION_OF_SEQ, seq))

    async def record(self, letter: DeadLetter, action: Action) -> tuple[Action, bool]:
        """Record ``action`` unless one is already recorded for ``letter``; return the one that
        counts, and whether it is new.

        One row per dead letter: a command repeated after a crash (between recording and
        removing the dead letter) finds the first row and adds none, so the log never says both
        "replayed" and "deleted" for one dead letter.
        """
        async with _missing_as_error(), self._conn.transaction():
            await self._conn.execute(LOCK_ACTIONS)
            existing = await self.of_letter(letter)
            if existing is not None:
                return existing, False
            row = await self._conn.fetchrow(
                RECORD_ACTION,
                action.stage,
                action.dead_letter_seq,
                action.original_stream_seq,
                action.action,
                action.event_id,
                action.event_stream_seq,
                action.reason,
            )
        recorded = _action(row)
        assert recorded is not None
        return recorded, True


def _action(row: asyncpg.Record | None) -> Action | None:
    if row is None:
        return None
    return Action(
        stage=row["stage"],
        dead_letter_seq=row["dead_letter_seq"],
        original_stream_seq=row["original_stream_seq"],
        action=cast(ActionName, row["action"]),
        event_id=row["event_id"],
        event_stream_seq=row["event_stream_seq"],
        reason=row["reason"],
        acted_at=cast(datetime, row["acted_at"]),
    )
