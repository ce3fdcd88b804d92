"""What the three senders share: one aiohttp session, the request time-out, and texts that
never carry a target's token (errors from the client library name the URL)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qsl, urlsplit

import aiohttp
from yarl import URL

from services.common.connect import mask_webhook_url
from services.notifier.domain.budget import REQUEST_TIMEOUT
from services.notifier.domain.model import TryAgain

USER_AGENT = "chuangwei-notifier/1"
_MIN_SECRET = 4


def new_session(timeout_s: float = REQUEST_TIMEOUT.total_seconds()) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=timeout_s),
        headers={"User-Agent": USER_AGENT},
        raise_for_status=False,
    )


class Scrubber:
    """Hides a target's URL and secrets in any text that may reach a log or a dead letter."""

    def __init__(self, url: str, *secrets: str | None) -> None:
        self.masked = mask_webhook_url(url)
        parts = urlsplit(url)
        hidden = {url, *(v for _, v in parse_qsl(parts.query)), *parts.path.split("/")}
        hidden |= {s for s in secrets if s}
        self._hidden = sorted((h for h in hidden if len(h) >= _MIN_SECRET), key=len, reverse=True)
        self._url = url

    def __call__(self, text: str) -> str:
        text = text.replace(self._url, self.masked)
        for value in self._hidden:
            if value in self.masked:
                continue  # a word of the masked URL itself (host, a short path segment)
            text = text.replace(value, "***")
        return text


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes


async def post(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    scrub: Scrubber,
    headers: Mapping[str, str] | None = None,
    *,
    encoded: bool = False,
) -> Answer | TryAgain:
    """POST ``body`` as JSON; a time-out or a connection that failed is a ``TryAgain``."""
    target = URL(url, encoded=encoded)
    try:
        async with session.post(
            target,
            data=body,
            headers={"Content-Type": "application/json; charset=utf-8", **(headers or {})},
            allow_redirects=False,
        ) as response:
            return Answer(response.status, dict(response.headers), await response.read())
    except TimeoutError:
        return TryAgain(f"no answer from {scrub.masked} in time")
    except aiohttp.ClientError as exc:
        return TryAgain(scrub(f"{type(exc).__name__}: {exc}"))


def retry_after(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """``Retry-After`` in seconds (a number of seconds or an HTTP date), if given."""
    value = headers.get("Retry-After")
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def excerpt(body: bytes, scrub: Scrubber, limit: int = 300) -> str:
    text = " ".join(body.decode("utf-8", errors="replace").split())
    return scrub(text[:limit])
