"""A nats-server with ``cw dev --secure``'s users and permissions, and clients of it that keep
what the server refused them."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import nats
from nats.aio.client import Client

from services.devstack.secure import SecureNats, secure_nats
from services.devstack.servers import OwnNats
from tests.support.waiting import eventually

DISTRICT = "320703"
"""The district of the secured server's publisher (``contracts/examples/events.jsonl``'s)."""


@dataclass
class SecuredServer:
    server_url: str
    """No credentials in it."""
    access: SecureNats
    log: Path

    def url(self, role: str) -> str:
        return self.access.url(self.server_url, role)

    def env(self, role: str) -> dict[str, str]:
        return self.access.env(self.server_url, role)


@contextlib.contextmanager
def secured_server() -> Iterator[SecuredServer]:
    folder = Path(tempfile.mkdtemp(prefix="cw-test-nats-secure-"))
    try:
        access = secure_nats(folder, district=DISTRICT)
        with OwnNats(folder / "store", config=access.config) as server:
            assert server.log_path is not None
            yield SecuredServer(server.url, access, server.log_path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Watched:
    """A client and every error the server sent it (permission violations among them)."""

    nc: Client
    errors: list[str] = field(default_factory=list)

    def refusals(self) -> list[str]:
        return [e for e in self.errors if "permissions violation" in e.lower()]

    async def refused(self, work: Awaitable[object], *, subject: str) -> str:
        """Run ``work`` (a publish or request the server should refuse) and return the
        server's refusal that names ``subject``; a request's missing answer is expected."""
        before = len(self.refusals())
        attempt = asyncio.ensure_future(work)

        async def said() -> str | None:
            new = self.refusals()[before:]
            return next((e for e in new if subject.lower() in e.lower()), None)

        try:
            return await eventually(said, within=10, what=f"a permissions violation on {subject}")
        finally:
            # A refused request waits for an answer that never comes: stop waiting.
            attempt.cancel()
            with contextlib.suppress(asyncio.CancelledError, nats.errors.Error):
                await attempt


@contextlib.asynccontextmanager
async def watched(url: str, *, inbox_prefix: str = "_INBOX") -> AsyncIterator[Watched]:
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    nc = await nats.connect(
        url, inbox_prefix=inbox_prefix, error_cb=on_error, max_reconnect_attempts=0
    )
    try:
        yield Watched(nc, errors)
    finally:
        await nc.close()
