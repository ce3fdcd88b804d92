"""The one SQL statement of ``cw publish``: which events of a batch the read model holds.

It reads the public view ``event_archive`` (the live generation, a stable contract), by its
primary key. The connection is opened in the background as soon as the command starts, with a
short deadline, so that a database that is away delays nothing but its own answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from uuid import UUID

import asyncpg

from services.common.connect import Unreachable, connect_postgres_command, failure_text
from services.intake.domain.ports import ArchiveUnavailable

HELD = """
SELECT event_id, payload::text AS payload FROM public.event_archive WHERE event_id = ANY($1::uuid[])
"""
CONNECT_WITHIN_S = 2.0
ASK_WITHIN_S = 10.0
"""One batch's question is a primary-key lookup of at most a thousand ids."""


class PostgresArchive:
    """``ReadModelArchive`` on the read model's ``public.event_archive``."""

    def __init__(self, database_url: str) -> None:
        self._connecting = asyncio.create_task(
            connect_postgres_command(database_url, within_s=CONNECT_WITHIN_S)
        )

    async def _conn(self) -> asyncpg.Connection:
        try:
            return await self._connecting
        except Unreachable as exc:
            raise ArchiveUnavailable(str(exc)) from None

    async def held(self, event_ids: Sequence[UUID]) -> Mapping[UUID, bytes]:
        conn = await self._conn()
        try:
            rows = await conn.fetch(HELD, list(event_ids), timeout=ASK_WITHIN_S)
        except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError):
            raise ArchiveUnavailable("the read model does not exist yet (cw init)") from None
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise ArchiveUnavailable(
                f"the read model did not answer ({failure_text(exc)})"
            ) from None
        return {row["event_id"]: row["payload"].encode() for row in rows}

    async def close(self) -> None:
        task = self._connecting
        if not task.done():
            task.cancel()
        elif not task.cancelled() and task.exception() is None:
            await task.result().close()
