"""``cw streams backup`` and ``cw streams restore`` against real nats-servers: every message of
every stream comes back at its sequence, with its headers and the holes deletions left; a
restore checks the files first and overwrites nothing without ``--replace``; the operator's
user may do both on a secured server, and a service's user may not."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client

from contracts.wire import DEAD_LETTERS_STREAM, EVENTS_STREAM, REMINDERS_STREAM
from services.backups import service
from services.backups.adapters.folder import Folder, FolderRefused
from services.backups.bootstrap import snapshots
from services.backups.domain.manifest import MANIFEST, BackupUnusable
from services.common.connect import NatsAccess
from services.common.streams import ensure_streams, stream_plans
from services.devstack.servers import OwnNats
from tests.support.processes import cw
from tests.support.secure_nats import secured_server

pytestmark = pytest.mark.integration

STREAMS = (EVENTS_STREAM, REMINDERS_STREAM, DEAD_LETTERS_STREAM)


@pytest.fixture
def folder() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="cw-test-backup-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def empty_server() -> Iterator[str]:
    """A second nats-server with nothing in it: where a backup is restored."""
    store = Path(tempfile.mkdtemp(prefix="cw-test-nats-restore-"))
    try:
        with OwnNats(store) as server:
            yield server.url
    finally:
        shutil.rmtree(store, ignore_errors=True)


@pytest.fixture
async def filled(nats_url: str) -> AsyncIterator[Client]:
    """The run's server with the three streams: events (one deleted), reminders, dead
    letters."""
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    await ensure_streams(js, stream_plans())
    for i in range(1, 1201):
        await js.publish(
            f"cw.events.320703.LY-FM-{i % 9:03d}.IssueFound",
            json.dumps({"n": i, "text": "整改" * (i % 40)}).encode(),
            headers={"Nats-Msg-Id": f"event-{i}"},
        )
    await js.delete_msg(EVENTS_STREAM, 7)
    for i in range(1, 31):
        await js.publish(
            "cw.reminders.320703.LY-FM-001.overdue", b'{"r": %d}' % i,
            headers={"Nats-Msg-Id": f"reminder-{i}"},
        )  # fmt: skip
    await js.publish("cw.dlq.projector", b"not json", headers={"Cw-Dlq-Reason": "malformed"})
    try:
        yield nc
    finally:
        await nc.close()


async def _messages(nc: Client, stream: str) -> list[tuple[int, str, bytes, dict[str, str]]]:
    js = nc.jetstream()
    info = await js.stream_info(stream)
    out = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        try:
            msg = await js.get_msg(stream, seq)
        except nats.js.errors.NotFoundError:
            continue
        out.append((seq, msg.subject or "", msg.data or b"", dict(msg.headers or {})))
    return out


async def test_every_message_comes_back_at_its_sequence_on_another_server(
    filled: Client, nats_url: str, empty_server: str, folder: Path
) -> None:
    said: list[str] = []
    async with snapshots(NatsAccess(nats_url)) as s:
        manifest = await service.backup(s, Folder(folder), say=said.append)
    assert sorted(p.name for p in folder.iterdir()) == sorted(  # noqa: ASYNC240
        [MANIFEST, *(f"{name}.snapshot" for name in STREAMS)]
    )
    written = json.loads((folder / MANIFEST).read_text())
    events = next(s for s in written["streams"] if s["name"] == EVENTS_STREAM)
    assert (events["messages"], events["first_seq"], events["last_seq"]) == (1199, 1, 1200)
    assert events["config"]["subjects"] == ["cw.events.>"]
    assert (
        len(events["sha256"]) == 64 and events["size"] == (folder / events["file"]).stat().st_size
    )
    assert written["created_at"] <= written["finished_at"]
    assert said[0].startswith(f"stream {EVENTS_STREAM}: 1,199 messages, sequences 1–1,200")
    assert [s.name for s in manifest.streams] == list(STREAMS)

    said.clear()
    async with snapshots(NatsAccess(empty_server)) as s:
        await service.restore(s, Folder(folder), say=said.append)
    assert any(line.startswith(f"stream {EVENTS_STREAM}: restored 1,199 messages") for line in said)
    assert said[-1].startswith("restored 3 streams from the backup of ")

    restored = await nats.connect(empty_server)
    try:
        for stream in STREAMS:
            assert await _messages(restored, stream) == await _messages(filled, stream), stream
        config = (await restored.jetstream().stream_info(EVENTS_STREAM)).config
        assert config.duplicate_window == 300 and config.max_msg_size == 1024 * 1024 - 16 * 1024
        # The next message takes the next sequence, as it would have on the original.
        ack = await restored.jetstream().publish("cw.events.320703.LY-FM-001.IssueFound", b"{}")
        assert ack.seq == 1201
    finally:
        await restored.close()


async def test_a_restore_overwrites_nothing_without_replace(
    filled: Client, nats_url: str, folder: Path
) -> None:
    async with snapshots(NatsAccess(nats_url)) as s:
        await service.backup(s, Folder(folder))
        await filled.jetstream().publish("cw.events.320703.LY-FM-001.IssueFound", b"after")
        before = await _messages(filled, EVENTS_STREAM)
        with pytest.raises(service.RestoreRefused) as refused:
            await service.restore(s, Folder(folder), say=lambda _: None)
        assert str(refused.value).startswith(
            f"streams {EVENTS_STREAM}, {REMINDERS_STREAM}, {DEAD_LETTERS_STREAM} on this server "
            "already; nothing was restored"
        )
        assert await _messages(filled, EVENTS_STREAM) == before

        said: list[str] = []
        await service.restore(s, Folder(folder), replace=True, say=said.append)
    assert f"stream {EVENTS_STREAM}: deleted the server's (--replace)" in said
    assert await _messages(filled, EVENTS_STREAM) == before[:-1]


async def test_a_damaged_or_unfinished_backup_is_refused_before_anything_changes(
    filled: Client, nats_url: str, empty_server: str, folder: Path
) -> None:
    async with snapshots(NatsAccess(nats_url)) as s:
        await service.backup(s, Folder(folder))
        with pytest.raises(FolderRefused, match="is not empty"):
            await service.backup(s, Folder(folder))
    snapshot = folder / f"{REMINDERS_STREAM}.snapshot"
    data = bytearray(snapshot.read_bytes())
    data[len(data) // 2] ^= 0xFF
    snapshot.write_bytes(bytes(data))
    async with snapshots(NatsAccess(empty_server)) as s:
        with pytest.raises(BackupUnusable, match="SHA-256 differs"):
            await service.restore(s, Folder(folder), say=lambda _: None)
        (folder / MANIFEST).unlink()
        with pytest.raises(BackupUnusable, match="did not finish"):
            await service.restore(s, Folder(folder), say=lambda _: None)
        assert await s.stream_names() == []


def test_the_operator_backs_up_and_restores_on_a_secured_server_and_a_service_may_not(
    folder: Path,
) -> None:
    with secured_server() as server:
        operator = {"CW_NATS_URL": server.url("operator")}
        asyncio.run(_create_streams(server.url("operator")))
        done = cw({**_env(), **operator}, "streams", "backup", str(folder / "a"))
        assert done.returncode == 0, done.stderr
        assert f"stream {EVENTS_STREAM}: no messages" in done.stdout

        done = cw({**_env(), **operator}, "streams", "restore", str(folder / "a"))
        assert done.returncode == 1
        assert done.stderr.startswith("cw streams restore: streams CW_EVENTS, ")
        assert len(done.stderr.splitlines()) == 1

        done = cw({**_env(), **operator}, "streams", "restore", "--replace", str(folder / "a"))
        assert done.returncode == 0, done.stderr
        assert "restored 3 streams from the backup of" in done.stdout

        for service_user in ("projector", "notifier"):
            env = {**_env(), **server.env(service_user)}
            done = cw(env, "streams", "backup", str(folder / service_user))
            assert done.returncode == 3, (service_user, done.stdout, done.stderr)
            assert "refused" in done.stderr and len(done.stderr.splitlines()) == 1


async def _create_streams(url: str) -> None:
    nc = await nats.connect(url)
    try:
        await ensure_streams(nc.jetstream(), stream_plans())
    finally:
        await nc.close()


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("CW_")}
