"""``cw dlq``'s composition root: the connections its commands open, and what they say when a
server or the records are not there."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import nats.errors
from nats.js import JetStreamContext

from services.common.connect import NatsAccess, mask_url
from services.common.refusals import Refusals
from services.deadletters.adapters.jetstream import StreamMissing, connect
from services.deadletters.adapters.postgres import RecordsMissing


class Unavailable(Exception):
    """NATS or a stream is not there; the message says what to do."""


@asynccontextmanager
async def jetstream(nats_url: NatsAccess | str) -> AsyncIterator[JetStreamContext]:
    refusals = Refusals()
    try:
        nc = await connect(nats_url, refusals)
    except (TimeoutError, OSError, nats.errors.Error) as exc:
        raise Unavailable(str(exc)) from None
    try:
        yield nc.jetstream()
    except StreamMissing as exc:
        raise Unavailable(str(exc)) from None
    except nats.errors.TimeoutError:
        # A request NATS refused this user is never answered: say the refusal, not the wait.
        if refusals.first is None:
            raise Unavailable("NATS did not answer in time; is it overloaded?") from None
        raise Unavailable(str(refusals.first)) from None
    finally:
        await nc.close()


@asynccontextmanager
async def postgres(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    try:
        conn = await asyncpg.connect(database_url, timeout=5)
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        raise Unavailable(
            f"cannot connect to PostgreSQL at {mask_url(database_url)}: {exc}"
        ) from None
    try:
        yield conn
    except RecordsMissing as exc:
        raise Unavailable(str(exc)) from None
    finally:
        await conn.close()
