"""Local HTTP servers that behave like the notifier's targets, for integration tests and the
benchmark: a DingTalk custom robot, a WeCom group robot and another system's webhook.

The robots do what the real ones do: they answer HTTP 200 with an ``errcode`` even when they
refuse; DingTalk checks the signature (310000 when it is wrong) and both count every request in
a sliding window: beyond ``per_minute`` in ``window`` the robot answers "too fast" (DingTalk
130101, WeCom 45009) and stays throttled for ``throttle`` (DingTalk's ten minutes; tests shorten
the window and the throttle together).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import unquote_plus

import orjson
from aiohttp import web

TOKEN = "0123456789abcdef0123456789abcdef"
TITLE_NUMBER = re.compile(r"#(\d+)")


@dataclass(frozen=True, slots=True)
class Request:
    """One request as the server saw it."""

    at: float
    """``time.monotonic()`` on arrival."""
    body: dict[str, object]
    accepted: bool
    errcode: int


@dataclass
class FakeRobot:
    """A DingTalk (``kind="dingtalk"``) or WeCom (``kind="wecom"``) robot on 127.0.0.1."""

    kind: str
    per_minute: int = 20
    window_s: float = 60.0
    throttle_s: float = 600.0
    secret: str | None = None
    refuse_with: int | None = None
    """Answer every request with this errcode (310000: a keyword or IP refusal)."""
    requests: list[Request] = field(default_factory=list)
    throttled_until: float = 0.0
    _runner: web.AppRunner | None = None
    url: str = ""

    async def start(self) -> str:
        app = web.Application()
        path = "/robot/send" if self.kind == "dingtalk" else "/cgi-bin/webhook/send"
        app.router.add_post(path, self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        key = "access_token" if self.kind == "dingtalk" else "key"
        self.url = f"http://127.0.0.1:{port}{path}?{key}={TOKEN}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def too_fast(self) -> int:
        return 130101 if self.kind == "dingtalk" else 45009

    def _answer(self, body: dict[str, object], errcode: int, message: str) -> web.Response:
        now = time.monotonic()
        self.requests.append(Request(now, body, errcode == 0, errcode))
        return web.json_response({"errcode": errcode, "errmsg": message})

    async def _handle(self, request: web.Request) -> web.Response:
        now = time.monotonic()
        token = request.query.get("access_token" if self.kind == "dingtalk" else "key")
        raw = await request.read()
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return self._answer({}, 40001, "invalid json")
        if token != TOKEN:
            return self._answer(body, 300001, "token is not exist")
        if self.kind == "dingtalk" and self.secret and not self._signed(request.query_string):
            return self._answer(body, 310000, "sign not match")
        # Every request counts, refused ones too, as the real robots count them.
        recent = [r for r in self.requests if r.at > now - self.window_s]
        if now < self.throttled_until:
            return self._answer(body, self.too_fast, "send too fast, exceed 20 times per minute")
        if len(recent) >= self.per_minute:
            self.throttled_until = now + self.throttle_s
            return self._answer(body, self.too_fast, "send too fast, exceed 20 times per minute")
        if self.refuse_with is not None:
            return self._answer(body, self.refuse_with, "keywords not in content")
        problem = self._check(body, raw)
        if problem:
            return self._answer(body, *problem)
        return self._answer(body, 0, "ok")

    def _signed(self, query: str) -> bool:
        # The raw query: ``sign`` must arrive URL-encoded, as DingTalk requires.
        fields = dict(part.split("=", 1) for part in query.split("&") if "=" in part)
        timestamp, sign = fields.get("timestamp", ""), fields.get("sign", "")
        if not timestamp.isdigit() or abs(time.time() * 1000 - int(timestamp)) > 3_600_000:
            return False
        assert self.secret is not None
        digest = hmac.new(
            self.secret.encode(), f"{timestamp}\n{self.secret}".encode(), hashlib.sha256
        ).digest()
        return hmac.compare_digest(unquote_plus(sign), base64.b64encode(digest).decode())

    def _check(self, body: dict[str, object], raw: bytes) -> tuple[int, str] | None:
        if body.get("msgtype") != "markdown" or not isinstance(body.get("markdown"), dict):
            return (40008, "invalid message type")
        markdown: dict[str, object] = body["markdown"]  # type: ignore[assignment]
        if self.kind == "dingtalk":
            if len(raw) > 20_000:
                return (460101, "message too long, exceed 20000 bytes")
            if not markdown.get("title") or not markdown.get("text"):
                return (40035, "missing title or text")
            return None
        content = markdown.get("content")
        if not isinstance(content, str) or not content:
            return (40008, "missing content")
        if len(content.encode()) > 4096:
            return (40058, "markdown.content exceed max length 4096")
        return None

    # What the tests read

    def accepted(self) -> list[Request]:
        return [r for r in self.requests if r.accepted]

    def texts(self) -> list[str]:
        out = []
        for r in self.accepted():
            markdown: dict[str, str] = r.body["markdown"]  # type: ignore[assignment]
            out.append(markdown["text" if self.kind == "dingtalk" else "content"])
        return out

    def numbers(self) -> list[int]:
        """The reminder numbers (``#n`` of the test reminders' titles) shown, in order."""
        return [int(n) for text in self.texts() for n in TITLE_NUMBER.findall(text)]

    def arrivals(self) -> dict[int, float]:
        """Each reminder number and when (``time.monotonic()``) it first arrived."""
        first: dict[int, float] = {}
        for request, text in zip(self.accepted(), self.texts(), strict=True):
            for n in TITLE_NUMBER.findall(text):
                first.setdefault(int(n), request.at)
        return first

    def messages_numbers(self) -> list[list[int]]:
        return [[int(n) for n in TITLE_NUMBER.findall(text)] for text in self.texts()]

    def most_in_any_window(self) -> int:
        """The most requests that arrived within any ``window_s``."""
        times = sorted(r.at for r in self.requests)
        return max((sum(1 for u in times if t <= u < t + self.window_s) for t in times), default=0)

    def throttled(self) -> bool:
        return any(r.errcode == self.too_fast for r in self.requests)


@dataclass
class WebhookCall:
    at: float
    key: str | None
    body: bytes
    status: int


@dataclass
class FakeWebhook:
    """Another system's webhook: records each call's ``Idempotency-Key`` and answers ``answer``
    (a status, or a function of the call number and the key giving one)."""

    answer: Callable[[int, str | None], int] = lambda _n, _key: 200
    retry_after: str | None = None
    calls: list[WebhookCall] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    url: str = ""

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/hooks/{token}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/hooks/{TOKEN}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        key = request.headers.get("Idempotency-Key")
        body = await request.read()
        status = self.answer(len(self.calls) + 1, key)
        self.calls.append(WebhookCall(time.monotonic(), key, body, status))
        headers = {"Retry-After": self.retry_after} if status == 429 and self.retry_after else {}
        return web.json_response({"status": status}, status=status, headers=headers)

    def keys(self, status: int = 200) -> list[str | None]:
        return [c.key for c in self.calls if c.status == status]
