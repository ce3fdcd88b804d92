"""DingTalk's custom robot (自定义机器人): a markdown message, signed when the robot has a
secret.

With a secret, the URL carries ``timestamp`` (milliseconds) and ``sign``: the URL-encoded
base64 of HMAC-SHA256, keyed with the secret, over ``timestamp + "\\n" + secret``. The robot
answers HTTP 200 with ``errcode`` 0 on success, 130101 when sent too fast (it is then throttled
for 10 minutes), 310000 for a signature, keyword or IP refusal.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from urllib.parse import quote_plus

import aiohttp
import orjson

from services.notifier.adapters.http import Answer, Scrubber, post
from services.notifier.adapters.robots import read_answer
from services.notifier.domain.messages import RobotFormat, RobotMessage
from services.notifier.domain.model import SendResult

TOO_FAST = 130101
REFUSED = 310000
BODY_LIMIT = 20_000
"""DingTalk refuses a request body above 20,000 bytes (errcode 460101)."""


def sign(timestamp_ms: int, secret: str) -> str:
    """``sign`` for ``timestamp_ms``, URL-encoded, as DingTalk checks it."""
    digest = hmac.new(
        secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256
    ).digest()
    return quote_plus(base64.b64encode(digest).decode())


def signed_url(url: str, secret: str | None, timestamp_ms: int) -> str:
    if not secret:
        return url
    joiner = "&" if "?" in url else "?"
    return f"{url}{joiner}timestamp={timestamp_ms}&sign={sign(timestamp_ms, secret)}"


def payload(message: RobotMessage) -> bytes:
    return orjson.dumps(
        {
            "msgtype": "markdown",
            "markdown": {"title": message.title, "text": message.text},
            "at": {"atMobiles": list(message.phones), "isAtAll": False},
        }
    )


FORMAT = RobotFormat(BODY_LIMIT, lambda message: len(payload(message)))


class DingTalkRobot:
    format = FORMAT

    def __init__(self, session: aiohttp.ClientSession, url: str, secret: str | None) -> None:
        self._session = session
        self._url = url
        self._secret = secret
        self.scrub = Scrubber(url, secret)

    async def send(self, message: RobotMessage) -> SendResult:
        url = signed_url(self._url, self._secret, int(time.time() * 1000))
        answer = await post(self._session, url, payload(message), self.scrub, encoded=True)
        if not isinstance(answer, Answer):
            return answer
        return read_answer(answer, self.scrub, TOO_FAST)
