"""Connecting to NATS, the same way in every command and service.

- ``connect_command``: for a command a person runs (``cw init``, ``cw publish``, ``cw dlq``,
  ``cw audit``): fails within seconds, in one line, with the URL's secrets masked; once
  connected, it rides out a server restart of up to a minute.
- ``connect_postgres_command``: the same for PostgreSQL.
- ``connect_service``: for a long-running service: waits for a server that is not up yet (the
  one retry policy), then reconnects for ever.

Who we are on NATS comes the same way everywhere (``NatsAccess``): a user and password (or a
token) in ``CW_NATS_URL``, or a credentials file in ``CW_NATS_CREDS`` (a ``.creds`` file with a
user JWT, or an NKey user seed). A server that refuses those credentials is not waited for: it
will not change its mind, so ``Refused`` says so at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import nats
import nats.errors
from nats.aio.client import Client

from services.common.retry import RetryPolicy, retry

if TYPE_CHECKING:
    from services.common.settings import Settings

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5.0
"""How long a command waits for a server before it says the server cannot be reached."""


class Unreachable(ConnectionError):
    """A server cannot be reached (or refuses us); the message says which, without secrets."""


class Refused(Unreachable):
    """NATS answered and refused our credentials, or refused an operation they do not allow."""


_JWT_MARK = "-----BEGIN NATS USER JWT-----"
_USER_SEED_PREFIX = "SU"


@dataclass(frozen=True, slots=True)
class NatsAccess:
    """Where NATS is and who we are there."""

    url: str
    creds: Path | None = None
    """A ``.creds`` file (user JWT and seed) or an NKey user seed file: ``CW_NATS_CREDS``."""
    inbox_prefix: str = "_INBOX"
    """Where replies come back: a user allowed to subscribe to its own prefix only cannot read
    another user's replies (``CW_NATS_INBOX_PREFIX``)."""

    @classmethod
    def of(cls, target: NatsAccess | str) -> NatsAccess:
        return target if isinstance(target, NatsAccess) else cls(target)

    @classmethod
    def from_settings(cls, settings: Settings) -> NatsAccess:
        return cls(settings.nats_url, settings.nats_creds, settings.nats_inbox_prefix)

    def shown(self) -> str:
        """The server and the credentials' file, fit for a message (no secret)."""
        where = mask_url(self.url)
        return f"{where} (credentials {self.creds})" if self.creds is not None else where

    def options(self) -> dict[str, Any]:
        """``nats.connect`` keyword arguments for these credentials."""
        options: dict[str, Any] = {"inbox_prefix": self.inbox_prefix}
        if self.creds is None:
            return options
        try:
            text = self.creds.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not text"
            raise Refused(f"cannot read CW_NATS_CREDS {self.creds}: {why}") from None
        if _JWT_MARK in text:
            options["user_credentials"] = str(self.creds)
        elif text.strip().startswith(_USER_SEED_PREFIX):
            options["nkeys_seed_str"] = text.strip()
        else:
            raise Refused(
                f"CW_NATS_CREDS {self.creds} is neither a .creds file (a user JWT and seed) "
                "nor an NKey user seed (a line starting SU)"
            )
        return options


def _refusal(exc: BaseException) -> str | None:
    """The server's own words when it refused us (authorization or permissions), else None."""
    text = str(exc)
    for mark in (
        "Authorization Violation",
        "Permissions Violation",
        "Authentication Expired",
        "User Authentication Revoked",
        "Account Authentication Expired",
    ):
        if mark.lower() in text.lower():
            return " ".join(text.replace("nats: ", "").strip("'\" ").split())
    return None


def _refused_text(access: NatsAccess, why: str) -> str:
    return (
        f"NATS at {access.shown()} refused these credentials ({why}); check the user and "
        "password in CW_NATS_URL or the file in CW_NATS_CREDS"
    )


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


async def connect_command(
    target: NatsAccess | str,
    *,
    name: str | None = None,
    on_refusal: Callable[[str], None] | None = None,
) -> Client:
    """Connect for a command: fail within seconds with ``Unreachable`` (``Refused`` when the
    server refuses the credentials). ``on_refusal`` is told the server's words each time it
    refuses this user an operation once connected (``Permissions Violation for Publish to
    "…"``): nats-py reports it only there, and the request or publish then gets no answer."""
    access = NatsAccess.of(target)
    failures: list[Exception] = []
    hopeless: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def quiet(exc: Exception) -> None:
        # nats-py logs a traceback per failed attempt by default; we say it in one line.
        failures.append(exc)
        log.debug("nats: %r", exc)
        refused = _refusal(exc)
        if refused is not None and on_refusal is not None:
            on_refusal(refused)
        # With one server, refused credentials or an untrusted certificate will not change on
        # a retry (nats-py goes on retrying TLS failures until the deadline): say so now.
        if (
            (refused is not None or isinstance(exc, ssl.SSLCertVerificationError))
            and "," not in access.url
            and not hopeless.done()
        ):
            hopeless.set_result(None)

    # One retry per server, and a deadline over all of them: nats-py reads 0 attempts as
    # "forever", and its default (60 attempts, 2 s apart) is the two-minute hang of old.
    connecting = asyncio.ensure_future(
        nats.connect(
            access.url,
            name=name,
            connect_timeout=CONNECT_TIMEOUT_S,
            max_reconnect_attempts=1,
            reconnect_time_wait=0.5,
            error_cb=quiet,
            **access.options(),
        )
    )
    try:
        either: set[asyncio.Future[Any]] = {connecting, hopeless}
        await asyncio.wait(either, timeout=3 * CONNECT_TIMEOUT_S, return_when="FIRST_COMPLETED")
        if not connecting.done():
            connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await connecting
            raise TimeoutError
        nc = connecting.result()
    except (OSError, TimeoutError, nats.errors.Error) as exc:
        last = failures[-1] if failures else exc
        # Any attempt the server answered with a refusal decides: the next one may end in a
        # reset connection instead, when the server closes before its -ERR is read.
        refusals = [r for r in (_refusal(e) for e in (*failures, exc)) if r is not None]
        if refusals:
            raise Refused(_refused_text(access, refusals[-1])) from None
        untrusted = [e for e in failures if isinstance(e, ssl.SSLCertVerificationError)]
        if untrusted:
            raise Unreachable(
                f"cannot reach NATS at {access.shown()}: its certificate is not trusted "
                f"({failure_text(untrusted[-1])}); give the CA that signed it with SSL_CERT_FILE"
            ) from None
        raise Unreachable(
            f"cannot reach NATS at {access.shown()} ({failure_text(last)}); "
            "is it running, and is CW_NATS_URL right?"
        ) from None
    finally:
        hopeless.cancel()
    # nats-py uses one setting for the first connection and for reconnecting: raise it now, so
    # that a server restart of up to a minute is waited out.
    nc.options["max_reconnect_attempts"] = 60
    nc.options["reconnect_time_wait"] = 1
    return nc


SERVICE_REFUSED: contextvars.ContextVar[Callable[[str], None] | None] = contextvars.ContextVar(
    "cw_service_refused", default=None
)
"""What a running service does when NATS refuses it something once connected (set by ``cw
run``, which then stops the service): a user without the rights the service needs is a
configuration to fix, not a condition to wait out."""


async def connect_service(target: NatsAccess | str, *, name: str) -> Client:
    """Connect for a long-running service: wait until the server is up, then stay connected.

    Refused credentials raise ``Refused`` at once instead of being retried for ever; an
    operation the server does not allow this user is logged as an error in one line and told
    to ``SERVICE_REFUSED``.
    """
    access = NatsAccess.of(target)
    options = access.options()
    refusals: list[str] = []
    connected = False
    when_refused = SERVICE_REFUSED.get()
    last_said = ""

    async def said(exc: Exception) -> None:
        # One line, instead of nats-py's default traceback per error; an outage's reconnect
        # attempts (two a second) say their failure once, not for as long as it lasts.
        nonlocal last_said
        refused = _refusal(exc)
        text = failure_text(exc) if refused is None else refused
        repeated, last_said = text == last_said, text
        if refused is not None:
            refusals.append(refused)
            if connected and when_refused is not None:
                when_refused(f"NATS at {access.shown()} refused {name}: {refused}")
        if repeated:
            log.debug("NATS at %s: %s", access.shown(), text)
        elif refused is None:
            log.warning("NATS at %s: %s", access.shown(), text)
        else:
            log.error("NATS at %s refused %s: %s", access.shown(), name, refused)

    async def attempt() -> Client:
        nonlocal connected
        refusals.clear()
        try:
            # One try per server here (nats-py would loop for ever inside connect, refused
            # credentials included); waiting for a server that is not up is retry()'s job.
            nc = await nats.connect(
                access.url,
                name=name,
                connect_timeout=CONNECT_TIMEOUT_S,
                max_reconnect_attempts=1,
                reconnect_time_wait=0.5,
                error_cb=said,
                **options,
            )
        except nats.errors.Error as exc:
            why = refusals[-1] if refusals else _refusal(exc)
            if why is not None:
                raise Refused(_refused_text(access, why)) from None
            raise
        nc.options["max_reconnect_attempts"] = -1  # once connected, reconnect for ever
        connected = True
        return nc

    return await retry(
        f"NATS at {access.shown()} not reachable",
        attempt,
        policy=RetryPolicy(first_s=0.2),
        never=(Refused,),
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
