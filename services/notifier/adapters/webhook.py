"""A webhook of another system: the reminder's JSON, as published, with
``Idempotency-Key: <reminder_id>``, so that a reminder sent again (a retry, a restart) is the
same request. 2xx is success; 429, 5xx and time-outs are tried again (after ``Retry-After``
when given); any other answer is a refusal, and the reminder goes to the dead letters."""

from __future__ import annotations

import aiohttp

from services.notifier.adapters.http import Answer, Scrubber, excerpt, post, retry_after
from services.notifier.domain.model import Delivered, Pending, Refused, SendResult, TryAgain

IDEMPOTENCY_KEY = "Idempotency-Key"


class WebhookTarget:
    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self._session = session
        self._url = url
        self.scrub = Scrubber(url)

    async def send(self, pending: Pending) -> SendResult:
        return await self._post(pending.raw, str(pending.reminder_id))

    async def send_alert(self, body: bytes, key: str) -> SendResult:
        return await self._post(body, key)

    async def _post(self, body: bytes, key: str) -> SendResult:
        answer = await post(self._session, self._url, body, self.scrub, {IDEMPOTENCY_KEY: key})
        if not isinstance(answer, Answer):
            return answer
        if 200 <= answer.status < 300:
            return Delivered()
        what = f"HTTP {answer.status}: {excerpt(answer.body, self.scrub)}"
        if answer.status in (408, 429) or answer.status >= 500:
            return TryAgain(what, retry_after(answer.headers))
        return Refused(what, "http_status")
