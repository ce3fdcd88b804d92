"""Connecting to NATS, the same way in every command and service.

- ``connect_command``: for a command a person runs (``cw init``, ``cw publish``, ``cw dlq``,
  ``cw audit``): fails within seconds, in one line, with the URL's secrets masked; once
  connected, it rides out a server restart of up to a minute.
- ``connect_postgres_command``: the same for PostgreSQL.
- ``connect_service``: for a long-running service: waits for a server that is not up yet (the
  one retry policy), then reconnects for ever.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import nats
import nats.errors
from nats.aio.client import Client

from services.common.retry import RetryPolicy, retry

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5.0
"""How long a command waits for a server before it says the server cannot be reached."""


class Unreachable(ConnectionError):
    """A server cannot be reached (or refuses us); the message says which, without secrets."""


def mask_url(url: str) -> str:
    """``url`` with any password (or NATS token) replaced by ``***``; a list stays a list."""
    return ",".join(_mask_one(part) for part in url.split(","))


_TOKEN_SEGMENT = 16
"""A path segment this long may be a credential (``/hooks/T0/B0/<token>``)."""


def mask_webhook_url(url: str) -> str:
    """A webhook URL fit for logs: every query value and every long path segment hidden, since
    robots and webhooks carry their tokens there (``?access_token=``, ``?key=``, ``/<token>``)."""
    try:
        parts = urlsplit(url.strip())
        host = parts.netloc.rpartition("@")[2]
    except ValueError:
        return "(an unreadable URL)"
    path = "/".join(
        "***" if len(segment) >= _TOKEN_SEGMENT else segment for segment in parts.path.split("/")
    )
    query = "&".join(f"{k}=***" for k, _ in parse_qsl(parts.query, keep_blank_values=True))
    return urlunsplit((parts.scheme, host, path, query, ""))


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


def failure_text(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


async def connect_command(url: str, *, name: str | None = None) -> Client:
    """Connect for a command: fail within seconds with ``Unreachable``."""
    failures: list[Exception] = []

    async def quiet(exc: Exception) -> None:
        # nats-py logs a traceback per failed attempt by default; we say it in one line.
        failures.append(exc)
        log.debug("nats: %r", exc)

    # One retry per server, and a deadline over all of them: nats-py reads 0 attempts as
    # "forever", and its default (60 attempts, 2 s apart) is the two-minute hang of old.
    try:
        nc = await asyncio.wait_for(
            nats.connect(
                url,
                name=name,
                connect_timeout=CONNECT_TIMEOUT_S,
                max_reconnect_attempts=1,
                reconnect_time_wait=0.5,
                error_cb=quiet,
            ),
            timeout=3 * CONNECT_TIMEOUT_S,
        )
    except (OSError, TimeoutError, nats.errors.Error) as exc:
        why = failure_text(failures[-1] if failures else exc)
        raise Unreachable(
            f"cannot reach NATS at {mask_url(url)} ({why}); "
            "is it running, and is CW_NATS_URL right?"
        ) from None
    # nats-py uses one setting for the first connection and for reconnecting: raise it now, so
    # that a server restart of up to a minute is waited out.
    nc.options["max_reconnect_attempts"] = 60
    nc.options["reconnect_time_wait"] = 1
    return nc


async def connect_service(url: str, *, name: str) -> Client:
    """Connect for a long-running service: wait until the server is up, then stay connected."""
    return await retry(
        f"NATS at {mask_url(url)} not reachable",
        lambda: nats.connect(
            url,
            name=name,
            connect_timeout=CONNECT_TIMEOUT_S,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
        ),
        policy=RetryPolicy(first_s=0.2),
    )


async def connect_postgres_command(
    url: str, *, within_s: float = CONNECT_TIMEOUT_S
) -> asyncpg.Connection:
    """Connect to PostgreSQL for a command: fail within ``within_s`` with ``Unreachable``."""
    try:
        return await asyncpg.connect(url, timeout=within_s)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise Unreachable(
            f"cannot reach PostgreSQL at {mask_url(url)} ({failure_text(exc)}); "
            "is it running, and is CW_DATABASE_URL right?"
        ) from None
