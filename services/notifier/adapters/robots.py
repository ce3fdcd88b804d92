"""What DingTalk's and WeCom's robots have in common: they answer HTTP 200 with an ``errcode``
even when they refuse, so the answer is read from the body."""

from __future__ import annotations

import orjson

from services.notifier.adapters.http import Answer, Scrubber, excerpt
from services.notifier.domain.model import Delivered, Refused, SendResult, Throttled, TryAgain

BUSY = -1
"""Both robots: the system is busy, try again later."""


def read_answer(answer: Answer, scrub: Scrubber, too_fast: int) -> SendResult:
    """A robot's answer: ``errcode`` 0 is success, ``too_fast`` a rate limit; other codes are
    refusals (a signature, a keyword, an IP, a message too long): retrying cannot help."""
    if answer.status == 429 or answer.status >= 500:
        return TryAgain(f"HTTP {answer.status}: {excerpt(answer.body, scrub)}")
    if answer.status != 200:
        return Refused(f"HTTP {answer.status}: {excerpt(answer.body, scrub)}", "http_status")
    try:
        reply = orjson.loads(answer.body)
        code = int(reply.get("errcode", -2))
        message = str(reply.get("errmsg", ""))
    except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
        return TryAgain(f"an answer that is not the robot's JSON: {excerpt(answer.body, scrub)}")
    reason = scrub(f"errcode {code}: {message}")
    if code == 0:
        return Delivered()
    if code == too_fast:
        return Throttled(reason)
    if code == BUSY:
        return TryAgain(reason)
    return Refused(reason, "robot_refused")
