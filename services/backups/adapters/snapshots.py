"""JetStream's snapshot and restore API, which nats-py does not wrap (nats-server
``server/jetstream_api.go``: ``jsStreamSnapshotRequest``, ``streamSnapshot``,
``jsStreamRestoreRequest``).

- **Snapshot**: a request to ``$JS.API.STREAM.SNAPSHOT.<stream>`` names a deliver subject (our
  inbox). The answer holds the stream's configuration and state; then the server sends the
  snapshot there in chunks, each with a reply subject (``$JS.SNAPSHOT.ACK.<stream>.…``) that we
  publish to once the chunk is written: the server keeps at most a window of chunks unacked. A
  last message without data ends it; its status header says whether it ended well (``204``,
  or none) or not (``408 No Flow Response``, ``500 …``).
- **Restore**: a request to ``$JS.API.STREAM.RESTORE.<stream>`` with the configuration and
  state names the subject to upload to (``$JS.SNAPSHOT.RESTORE.<stream>.…``); each chunk is a
  request there (an empty answer: taken; JSON: an error), and an empty chunk ends it, answered
  with the new stream's info or an error. A stream of that name must not exist.

The operator's NATS user may publish to both ``$JS.SNAPSHOT`` subjects
(``services/permissions/domain/users.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from nats.aio.client import Client
from nats.aio.msg import Msg

from services.common.refusals import Refusals

T = TypeVar("T")

CHUNK_BYTES = 128 * 1024
"""The server's default chunk, and what a restore uploads at a time (under ``max_payload``)."""
API_TIMEOUT_S = 10.0
CHUNK_TIMEOUT_S = 30.0
"""How long a chunk may take: the server's own flow control gives up after 5 s without acks,
so a silence this long means the snapshot has stopped."""
CHECK_TIMEOUT_S = 300.0
"""How long the server may take to check every message of a stream before its snapshot."""
FINISH_TIMEOUT_S = 120.0
"""How long the server may take to build the stream from the uploaded snapshot."""
STREAM_NOT_FOUND = 10059


class SnapshotFailed(RuntimeError):
    """The server refused or broke off a snapshot or a restore; the message says its words."""


class StreamNotFound(SnapshotFailed):
    pass


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The stream as the server described it with the snapshot."""

    config: Mapping[str, Any]
    state: Mapping[str, Any]


def _answer(msg: Msg, what: str) -> dict[str, Any]:
    try:
        data = json.loads(msg.data) if msg.data else {}
    except ValueError:
        raise SnapshotFailed(f"{what}: the server's answer is not JSON") from None
    if not isinstance(data, dict):
        raise SnapshotFailed(f"{what}: the server's answer is not a JSON object")
    error = data.get("error")
    if error:
        code = error.get("err_code") if isinstance(error, dict) else None
        text = error.get("description", error) if isinstance(error, dict) else error
        kind = StreamNotFound if code == STREAM_NOT_FOUND else SnapshotFailed
        raise kind(f"{what}: {text}")
    return data


class Snapshots:
    """One connection's snapshots and restores; refusals end a wait at once."""

    def __init__(self, nc: Client, refusals: Refusals | None = None) -> None:
        self.nc = nc
        self.refusals = refusals or Refusals()

    async def _race(self, work: Awaitable[T]) -> T:
        return await self.refusals.race(work)

    async def stream_names(self) -> list[str]:
        names: list[str] = []
        offset = 0
        while True:
            msg = await self._race(
                self.nc.request(
                    "$JS.API.STREAM.NAMES",
                    json.dumps({"offset": offset}).encode(),
                    timeout=API_TIMEOUT_S,
                )
            )
            data = _answer(msg, "stream names")
            page = data.get("streams") or []
            names += page
            offset += len(page)
            if not page or offset >= int(data.get("total", 0)):
                return names

    async def delete(self, stream: str) -> None:
        msg = await self._race(
            self.nc.request(f"$JS.API.STREAM.DELETE.{stream}", b"", timeout=API_TIMEOUT_S)
        )
        _answer(msg, f"deleting stream {stream}")

    async def snapshot(self, stream: str, write: Callable[[bytes], None]) -> Snapshot:
        """Snapshot ``stream``: each chunk is handed to ``write`` in order, and acknowledged to
        the server once written. Returns the stream's configuration and state at the snapshot.
        Consumers are left out: every consumer of this system starts again from its checkpoint
        in PostgreSQL."""
        inbox = self.nc.new_inbox()
        queue: asyncio.Queue[Msg] = asyncio.Queue()

        async def took(msg: Msg) -> None:
            await queue.put(msg)

        sub = await self.nc.subscribe(inbox, cb=took)
        try:
            request = {"deliver_subject": inbox, "no_consumers": True, "jsck": True,
                       "chunk_size": CHUNK_BYTES}  # fmt: skip
            # The answer comes once the server has checked every message (jsck): a while, for
            # a large stream.
            msg = await self._race(
                self.nc.request(
                    f"$JS.API.STREAM.SNAPSHOT.{stream}",
                    json.dumps(request).encode(),
                    timeout=CHECK_TIMEOUT_S,
                )
            )
            data = _answer(msg, f"snapshot of {stream}")
            while True:
                try:
                    chunk = await self._race(asyncio.wait_for(queue.get(), CHUNK_TIMEOUT_S))
                except TimeoutError:
                    raise SnapshotFailed(
                        f"snapshot of {stream}: nothing came for {CHUNK_TIMEOUT_S:.0f} s"
                    ) from None
                if not chunk.data:
                    headers = chunk.headers or {}
                    status = headers.get("Status", "204")
                    if status != "204":
                        why = headers.get("Description", "")
                        raise SnapshotFailed(
                            f"snapshot of {stream}: the server broke it off ({status} {why})"
                        )
                    break
                write(chunk.data)
                if chunk.reply:
                    await self.nc.publish(chunk.reply, b"")
            return Snapshot(dict(data.get("config") or {}), dict(data.get("state") or {}))
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def restore(
        self,
        stream: str,
        config: Mapping[str, Any],
        state: Mapping[str, Any],
        chunks: Iterable[bytes],
    ) -> dict[str, Any]:
        """Upload a snapshot as the new stream ``stream``; returns the stream's info."""
        what = f"restore of {stream}"
        msg = await self._race(
            self.nc.request(
                f"$JS.API.STREAM.RESTORE.{stream}",
                json.dumps({"config": dict(config), "state": dict(state)}).encode(),
                timeout=API_TIMEOUT_S,
            )
        )
        upload = _answer(msg, what).get("deliver_subject")
        if not upload:
            raise SnapshotFailed(f"{what}: the server named no subject to upload to")
        for chunk in chunks:
            reply = await self._race(self.nc.request(upload, chunk, timeout=CHUNK_TIMEOUT_S))
            if reply.data:
                _answer(reply, what)
        done = await self._race(self.nc.request(upload, b"", timeout=FINISH_TIMEOUT_S))
        # JSApiStreamCreateResponse: the stream's info at the top level.
        info = _answer(done, what)
        if not isinstance(info.get("state"), dict):
            raise SnapshotFailed(f"{what}: the server did not say what it restored")
        return info
