"""A stream name is not an identity: every consumer (projector, reminders, notifier) takes
nothing from another stream of its stream's name, stalls saying why, and resumes by itself when
the stream it followed is back. Real NATS (two servers for "another server"), PostgreSQL, and
the services as ``cw run`` runs them, in this process.

Each case: the consumer takes 6 messages; then its stream becomes another one (deleted and
created again; another server behind the same address; restored from an older backup); the
consumer must stall with its checkpoint and the message id it recorded unchanged, and take none
of the other stream's messages; then the original comes back (restored whole, or the address
points at the original server again) with 2 more messages, and the consumer takes exactly those.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import asyncpg
import nats
import pytest
from nats.js import JetStreamContext

from contracts.wire import MSG_ID
from services.common.entrypoints import initialise
from services.common.settings import Settings
from services.common.streams import EVENTS_STREAM, REMINDERS_STREAM, ensure_streams, stream_plans
from services.consumer import loop
from services.consumer.health import STALLED, Health
from services.devstack.servers import OwnNats
from services.notifier.adapters.metrics import NotifierMetrics
from services.notifier.bootstrap import run_notifier
from services.projector.adapters.metrics import ProjectorMetrics
from services.projector.bootstrap import run_projector
from services.reminders.adapters.metrics import ReminderMetrics
from services.reminders.bootstrap import run_reminders
from tests import factories as f
from tests.support import reminder_messages as rm
from tests.support.in_process import service_in_process
from tests.support.notifier import notify_file
from tests.support.robots import FakeWebhook
from tests.support.tcp_proxy import FaultyProxy, via
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

Message = tuple[str, bytes, str]
"""Subject, payload, and the id the consumer records (the event or reminder id)."""


@dataclass(frozen=True)
class Follower:
    """One consumer: its stream, what it records, what it has taken, how it runs."""

    name: str
    stream: str
    tracking: str
    """SQL: its tracking row (``{s}``: the live read model's schema)."""
    taken: str
    """SQL: the ids of every message it took."""
    make: Callable[[int, int], list[Message]]
    run: Callable[[Settings, Health, Path], contextlib.AbstractAsyncContextManager[Any]]
    gauge: str = "cw_stream_replaced"

    async def tracked(self, db: asyncpg.Connection) -> tuple[int, str | None]:
        schema = await db.fetchval("SELECT active_schema FROM cw.read_model_head")
        row = await db.fetchrow(self.tracking.replace("{s}", str(schema)))
        return (0, None) if row is None else (int(row[0]), row[1])

    async def taken_ids(self, db: asyncpg.Connection) -> set[str]:
        return {str(r[0]) for r in await db.fetch(self.taken)}


def _events(base: int, n: int) -> list[Message]:
    when = f.at("2023-03-01 10:00")
    events = [f.issue("LY-FM-001", f"ISS-{base + i}", when) for i in range(n)]
    return [(e.subject, f.wire(e), str(e.event_id)) for e in events]


def _reminders(base: int, n: int) -> list[Message]:
    reminders = [rm.reminder(base + i) for i in range(n)]
    return [(rm.subject(r), rm.wire(r), str(r.reminder_id)) for r in reminders]


def _reading_events(
    runner: Callable[..., Any], metrics: Callable[[], Any], fetch_wait: str
) -> Callable[[Settings, Health, Path], contextlib.AbstractAsyncContextManager[Any]]:
    """A service reading ``CW_EVENTS`` (the projector, the reminders), polling often."""

    @contextlib.asynccontextmanager
    async def running(settings: Settings, health: Health, _tmp: Path) -> AsyncIterator[Any]:
        quick = settings.model_copy(update={fetch_wait: timedelta(milliseconds=200)})
        observer = metrics()
        async with service_in_process(partial(runner, health=health), quick, observer):
            yield observer

    return running


_projector = _reading_events(run_projector, ProjectorMetrics, "projector_fetch_wait")
_reminders_service = _reading_events(run_reminders, ReminderMetrics, "reminders_fetch_wait")


@contextlib.asynccontextmanager
async def _notifier(settings: Settings, health: Health, tmp: Path) -> AsyncIterator[Any]:
    hook = FakeWebhook()
    await hook.start()
    target: dict[str, object] = {"name": "hook", "kind": "webhook", "url": hook.url}
    settings = settings.model_copy(
        update={"notify_file": notify_file(tmp / "notify.toml", [target])}
    )
    metrics = NotifierMetrics()
    try:
        async with service_in_process(partial(run_notifier, health=health), settings, metrics):
            yield metrics
    finally:
        await hook.stop()


FOLLOWERS = [
    Follower(
        "projector",
        EVENTS_STREAM,
        "SELECT stream_seq, message_id FROM {s}.checkpoint WHERE projection = 'projector'",
        "SELECT event_id FROM public.event_archive",
        _events,
        _projector,
    ),
    Follower(
        "reminders",
        EVENTS_STREAM,
        "SELECT stream_seq, message_id FROM cw_reminders.checkpoint",
        "SELECT event_id FROM cw_reminders.seen_events",
        _events,
        _reminders_service,
    ),
    Follower(
        "notifier",
        REMINDERS_STREAM,
        "SELECT stream_seq, message_id FROM cw_notifier.checkpoints",
        "SELECT reminder_id FROM cw_notifier.reminders",
        _reminders,
        _notifier,
    ),
]


@pytest.fixture(params=FOLLOWERS, ids=[f.name for f in FOLLOWERS])
def follower(request: pytest.FixtureRequest) -> Follower:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(autouse=True)
def quick_recheck(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stalled consumer looks again every 30 s; here every 0.3 s."""
    monkeypatch.setattr(loop, "RECHECK_S", 0.3)


async def publish(js: JetStreamContext, messages: list[Message]) -> None:
    for subject, payload, message_id in messages:
        await js.publish(subject, payload, headers={MSG_ID: message_id})


async def recreate(js: JetStreamContext, stream: str) -> None:
    """What a NATS node that lost its store and ``cw init`` leave: the stream, empty."""
    await js.delete_stream(stream)
    await ensure_streams(js, stream_plans())


@dataclass
class Case:
    follower: Follower
    settings: Settings
    db: asyncpg.Connection
    health: Health
    metrics: Any = None

    async def reaches(self, seq: int, message_id: str) -> None:
        async def there() -> bool:
            return await self.follower.tracked(self.db) == (seq, message_id)

        await eventually(
            there, within=30, what=lambda: f"{self.follower.name} at {seq} ({self.health.report()})"
        )

    async def stalls(self) -> str:
        async def replaced() -> str | None:
            gauge = self.metrics.registry.get_sample_value(
                self.follower.gauge, {"stream": self.follower.stream}
            )
            return self.health.replaced if gauge == 1 else None

        why = await eventually(replaced, within=30, what=f"{self.follower.name} stalls")
        status, reason = self.health.status()
        assert (status, reason) == (STALLED, why)
        assert self.health.report()[0] == 503
        assert why.startswith(f"{self.follower.stream} is not the stream the {self.follower.name}")
        return why

    async def resumes(self) -> None:
        async def clear() -> bool:
            gauge = self.metrics.registry.get_sample_value(
                self.follower.gauge, {"stream": self.follower.stream}
            )
            return self.health.replaced is None and gauge == 0

        await eventually(clear, within=30, what=f"{self.follower.name} resumes")


@contextlib.asynccontextmanager
async def case(follower: Follower, settings: Settings, tmp: Path) -> AsyncIterator[Case]:
    await initialise(settings)
    db = await asyncpg.connect(settings.database_url)
    health = Health()
    try:
        c = Case(follower, settings, db, health)
        async with follower.run(settings, health, tmp) as metrics:
            c.metrics = metrics
            yield c
    finally:
        await db.close()


async def _took_none_of(c: Case, others: list[Message]) -> None:
    taken = await c.follower.taken_ids(c.db)
    assert not taken & {m[2] for m in others}, "a message of the other stream was taken"


async def test_a_stream_deleted_and_created_again(
    follower: Follower, settings: Settings, tmp_path: Path
) -> None:
    original, more, others = follower.make(0, 6), follower.make(100, 2), follower.make(200, 9)
    async with case(follower, settings, tmp_path) as c:
        nc = await nats.connect(settings.nats_url)
        try:
            js = nc.jetstream()
            await publish(js, original)
            await c.reaches(6, original[-1][2])
            await recreate(js, follower.stream)
            # The new stream goes past the checkpoint, with another message at its sequence.
            await publish(js, others)
            why = await c.stalls()
            assert f"message {original[-1][2]} at sequence 6" in why
            assert f"holds message {others[5][2]}" in why
            assert await follower.tracked(c.db) == (6, original[-1][2])
            # Restored whole from its backup: the same messages at the same sequences.
            await recreate(js, follower.stream)
            await publish(js, original + more)
            await c.resumes()
            await c.reaches(8, more[-1][2])
            await _took_none_of(c, others)
        finally:
            await nc.close()


async def test_a_stream_restored_from_an_older_backup(
    follower: Follower, settings: Settings, tmp_path: Path
) -> None:
    original, more = follower.make(0, 6), follower.make(100, 2)
    async with case(follower, settings, tmp_path) as c:
        nc = await nats.connect(settings.nats_url)
        try:
            js = nc.jetstream()
            await publish(js, original)
            await c.reaches(6, original[-1][2])
            await recreate(js, follower.stream)
            await publish(js, original[:4])
            why = await c.stalls()
            assert "ends at sequence 4" in why
            # The rest of the backup comes back: the same stream up to the checkpoint.
            await publish(js, original[4:] + more)
            await c.resumes()
            await c.reaches(8, more[-1][2])
            assert await follower.taken_ids(c.db) >= {m[2] for m in original + more}
        finally:
            await nc.close()


async def test_another_server_with_the_same_stream_names(
    follower: Follower, settings: Settings, tmp_path: Path
) -> None:
    original, more, others = follower.make(0, 6), follower.make(100, 2), follower.make(200, 9)
    store = Path(tempfile.mkdtemp(prefix="cw-test-other-nats-"))
    host, port = settings.nats_url.rsplit("//", 1)[1].rsplit(":", 1)
    proxy = FaultyProxy(host, int(port))
    await proxy.start()
    try:
        with OwnNats(store) as other:
            other_nc = await nats.connect(other.url)
            await ensure_streams(other_nc.jetstream(), stream_plans())
            await publish(other_nc.jetstream(), others)
            await other_nc.close()
            await ensure_streams((nc := await nats.connect(settings.nats_url)).jetstream(),
                                 stream_plans())  # fmt: skip
            await nc.close()
            through_proxy = settings.model_copy(
                update={"nats_url": via(settings.nats_url, proxy.port)}
            )
            async with case(follower, through_proxy, tmp_path) as c:
                nc = await nats.connect(settings.nats_url)
                try:
                    js = nc.jetstream()
                    await publish(js, original)
                    await c.reaches(6, original[-1][2])
                    # The same address now leads to another server (a failover, a move).
                    await proxy.cut()
                    proxy.target = ("127.0.0.1", other.port)
                    await proxy.restore()
                    await c.stalls()
                    await publish(js, more)
                    # And back to the server it followed: it goes on, from where it was.
                    await proxy.cut()
                    proxy.target = (host, int(port))
                    await proxy.restore()
                    await c.resumes()
                    await c.reaches(8, more[-1][2])
                    await _took_none_of(c, others)
                finally:
                    await nc.close()
    finally:
        await proxy.stop()
        shutil.rmtree(store, ignore_errors=True)


async def test_messages_the_streams_limits_removed_are_not_another_stream(
    settings: Settings, tmp_path: Path
) -> None:
    """``CW_REMINDERS`` keeps 90 days: the notifier's checkpoint message may be gone, by the
    stream's own limits (here a purge), and the notifier must go on after a restart."""
    follower = FOLLOWERS[2]
    original, more = follower.make(0, 6), follower.make(100, 2)
    nc = await nats.connect(settings.nats_url)
    try:
        js = nc.jetstream()
        async with case(follower, settings, tmp_path) as c:
            await publish(js, original)
            await c.reaches(6, original[-1][2])
        await js.purge_stream(follower.stream)
        await publish(js, more)
        async with case(follower, settings, tmp_path) as c:
            await c.reaches(8, more[-1][2])
            assert c.health.replaced is None
    finally:
        await nc.close()
