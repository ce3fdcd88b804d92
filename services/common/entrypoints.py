"""``cw init``: create the streams and the database objects. Safe to run again."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import nats
import nats.errors
from nats.aio.client import Client

from services.common.runtime import run
from services.common.settings import Settings
from services.common.streams import ensure_streams, stream_plans

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5.0
"""How long ``cw init`` waits for each server before it says the server cannot be reached."""
EXIT_UNREACHABLE = 2


class Unreachable(RuntimeError):
    """A server ``cw init`` needs cannot be reached (or refuses us); the message says which."""


def mask_url(url: str) -> str:
    """``url`` with any password (or NATS token) replaced by ``***``; a list stays a list."""
    return ",".join(_mask_one(part) for part in url.split(","))


def _mask_one(url: str) -> str:
    try:
        parts = urlsplit(url.strip())
        password, user = parts.password, parts.username
        host = parts.netloc.rpartition("@")[2]
    except ValueError:
        return "(an unreadable URL)"
    if password is not None:
        userinfo = f"{user or ''}:***@"
    elif user is not None and parts.scheme in ("nats", "tls", "ws", "wss"):
        userinfo = "***@"  # a NATS URL's lone user part is a token
    else:
        userinfo = f"{user}@" if user is not None else ""
    query = urlencode(
        [
            (k, "***" if k.lower() in ("password", "token") else v)
            for k, v in parse_qsl(parts.query)
        ],
        safe="*",
    )
    return urlunsplit((parts.scheme, userinfo + host, parts.path, query, parts.fragment))


def _why(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


async def _connect_nats(url: str) -> Client:
    failures: list[Exception] = []

    async def quiet(exc: Exception) -> None:
        # nats-py logs a traceback per failed attempt by default; we say it in one line.
        failures.append(exc)
        log.debug("nats: %r", exc)

    # One retry per server, and a deadline over all of them: nats-py reads 0 attempts as
    # "forever", and its default (60 attempts, 2 s apart) is the two-minute hang of old.
    try:
        return await asyncio.wait_for(
            nats.connect(
                url,
                connect_timeout=CONNECT_TIMEOUT_S,
                max_reconnect_attempts=1,
                reconnect_time_wait=0.5,
                error_cb=quiet,
            ),
            timeout=3 * CONNECT_TIMEOUT_S,
        )
    except (OSError, TimeoutError, nats.errors.Error) as exc:
        why = _why(failures[-1] if failures else exc)
        raise Unreachable(
            f"cannot reach NATS at {mask_url(url)} ({why}); "
            "is it running, and is CW_NATS_URL right?"
        ) from None


async def _check_postgres(url: str) -> None:
    try:
        conn = await asyncpg.connect(url, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise Unreachable(
            f"cannot reach PostgreSQL at {mask_url(url)} ({_why(exc)}); "
            "is it running, and is CW_DATABASE_URL right?"
        ) from None
    await conn.close()


async def initialise(settings: Settings) -> list[str]:
    """Create what is missing; change nothing an operator chose (but a ``max_msg_size`` that
    would not leave room for dead-letter headers). Returns one line per object.

    Raises ``Unreachable`` within seconds when NATS or PostgreSQL cannot be reached.
    """
    from services.projector.bootstrap import ensure_read_model  # noqa: PLC0415

    nc = await _connect_nats(settings.nats_url)
    try:
        report = await ensure_streams(
            nc.jetstream(),
            stream_plans(settings.events_duplicate_window, settings.dead_letter_duplicate_window),
        )
    finally:
        await nc.close()
    await _check_postgres(settings.database_url)
    report.extend(await ensure_read_model(settings))
    return report


def _init(args: argparse.Namespace) -> int:
    try:
        lines = run(initialise(Settings()))
    except Unreachable as exc:
        print(f"cw init: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    for line in lines:
        print(line)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "init",
        help="create the streams and apply the database migrations",
        epilog="exit status: 0 done; 2 NATS or PostgreSQL cannot be reached (said in one line)",
    )
    p.set_defaults(handler=_init)
