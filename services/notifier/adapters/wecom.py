"""WeCom's group robot (企业微信群机器人): a markdown message whose ``content`` is at most 4096
bytes of UTF-8. It answers HTTP 200 with ``errcode`` 0 on success and 45009 when rate limited
(20 messages a minute per robot)."""

from __future__ import annotations

import aiohttp
import orjson

from services.notifier.adapters.http import Answer, Scrubber, post
from services.notifier.adapters.robots import read_answer
from services.notifier.domain.messages import RobotFormat, RobotMessage
from services.notifier.domain.model import SendResult

TOO_FAST = 45009
CONTENT_LIMIT = 4096
"""``markdown.content``: at most 4096 bytes of UTF-8 (errcode 40058 beyond)."""


def payload(message: RobotMessage) -> bytes:
    return orjson.dumps({"msgtype": "markdown", "markdown": {"content": message.text}})


FORMAT = RobotFormat(CONTENT_LIMIT, lambda message: len(message.text.encode()))


class WeComRobot:
    format = FORMAT

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self._session = session
        self._url = url
        self.scrub = Scrubber(url)

    async def send(self, message: RobotMessage) -> SendResult:
        answer = await post(self._session, self._url, payload(message), self.scrub)
        if not isinstance(answer, Answer):
            return answer
        return read_answer(answer, self.scrub, TOO_FAST)
