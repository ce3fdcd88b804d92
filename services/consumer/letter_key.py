"""The key that makes a service's dead-letter ids its own.

``CW_DEAD_LETTERS`` deduplicates by ``Nats-Msg-Id`` across the whole stream, and a district's
publisher may write any ``Nats-Msg-Id`` on its own ``cw.dlq.intake.<district>``. An id a
district can work out (``projector:<stream seq>``) it can therefore write first, and the
service's letter is then answered as a duplicate and never stored. So a service's id carries
an HMAC under a key kept in PostgreSQL (``cw.dead_letter_key``, made once by ``cw init``),
which no district can read: the same letter published again after a crash gets the same id
(stored once), and no district can produce it.
"""

from __future__ import annotations

import asyncpg

DEAD_LETTER_KEY = "SELECT key FROM cw.dead_letter_key"


class DeadLetterKeyMissing(RuntimeError):
    """The database has no ``cw.dead_letter_key``: ``cw init`` of this version has not run."""


class DeadLetterKey:
    """Reads the key on first use (PostgreSQL may be down at start) and keeps it."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._key: bytes | None = None

    async def __call__(self) -> bytes:
        if self._key is None:
            try:
                key = await self._pool.fetchval(DEAD_LETTER_KEY)
            except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError) as exc:
                raise DeadLetterKeyMissing(f"{exc}: run `cw init` first") from None
            if not key:
                raise DeadLetterKeyMissing(
                    "cw.dead_letter_key holds no key (migration 007 makes it)"
                )
            self._key = str(key).encode()
        return self._key
