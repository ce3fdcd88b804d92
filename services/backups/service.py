"""``cw streams backup`` and ``cw streams restore``: every stream of the system to a folder and
back, with the sequences the consumers' checkpoints name."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from contracts.wire import DEAD_LETTERS_STREAM, EVENTS_STREAM, REMINDERS_STREAM
from services.backups.adapters.folder import Folder
from services.backups.adapters.snapshots import Snapshots
from services.backups.domain.manifest import (
    BackupUnusable,
    Manifest,
    StreamBackup,
    blocked,
    checksum_problem,
    size_text,
    snapshot_file,
)
from services.common.localtime import shown

STREAMS = (EVENTS_STREAM, REMINDERS_STREAM, DEAD_LETTERS_STREAM)
Say = Callable[[str], None]


class RestoreRefused(RuntimeError):
    """The restore would overwrite a stream without ``--replace``; nothing was changed."""


def _now() -> datetime:
    return datetime.now(UTC)


async def backup(
    snapshots: Snapshots,
    folder: Folder,
    *,
    streams: Sequence[str] = STREAMS,
    say: Say = print,
    clock: Callable[[], datetime] = _now,
) -> Manifest:
    """Snapshot each stream into ``folder`` (new or empty), then write the manifest."""
    folder.prepare()
    existing = set(await snapshots.stream_names())
    missing = [s for s in streams if s not in existing]
    if missing:
        raise BackupUnusable(
            f"no {_streams(missing)} on this server: run `cw init` first, or point "
            "CW_NATS_URL at the server to back up; nothing was written"
        )
    started = clock()
    taken: list[StreamBackup] = []
    for name in streams:
        file = snapshot_file(name)
        with folder.writer(file) as out:
            described = await snapshots.snapshot(name, out.write)
        taken.append(
            StreamBackup(
                name, file, out.digest.size, out.digest.hexdigest, described.config,
                described.state,
            )
        )  # fmt: skip
        say(f"stream {name}: {taken[-1].summary()}")
    server = snapshots.nc.connected_server_version
    manifest = Manifest(started, clock(), str(server), tuple(taken))
    folder.write_manifest(manifest)
    return manifest


async def restore(
    snapshots: Snapshots,
    folder: Folder,
    *,
    replace: bool = False,
    say: Say = print,
    zone: ZoneInfo | None = None,
) -> list[StreamBackup]:
    """Restore every stream of the backup in ``folder``. Checks every file against the
    manifest and refuses to overwrite an existing stream (``RestoreRefused``) before it changes
    anything; with ``replace`` an existing stream is deleted first."""
    manifest = folder.manifest()
    for s in manifest.streams:
        problem = checksum_problem(s, *folder.digest(s.file))
        if problem is not None:
            raise BackupUnusable(problem)
    names = [s.name for s in manifest.streams]
    existing = set(await snapshots.stream_names())
    refused = blocked(names, existing, replace=replace)
    if refused:
        them = "it" if len(refused) == 1 else "them"
        raise RestoreRefused(
            f"{_streams(refused)} on this server already; nothing was restored "
            f"(--replace deletes {them} and restores the backup's)"
        )
    for s in manifest.streams:
        if s.name in existing:
            await snapshots.delete(s.name)
            say(f"stream {s.name}: deleted the server's (--replace)")
        info = await snapshots.restore(s.name, s.config, s.state, folder.chunks(s.file))
        state = info.get("state") or {}
        last = int(state.get("last_seq", 0))
        if last != s.last_seq or int(state.get("messages", 0)) != s.messages:
            raise BackupUnusable(
                f"stream {s.name}: restored {state.get('messages')} messages up to sequence "
                f"{last}, the backup held {s.messages} up to {s.last_seq}"
            )
        say(f"stream {s.name}: restored {s.summary()}")
    taken = shown(manifest.created_at, zone or ZoneInfo("UTC"), seconds=True, offset=True)
    say(
        f"restored {len(manifest.streams)} streams from the backup of {taken} "
        f"({size_text(sum(s.size for s in manifest.streams))})"
    )
    return list(manifest.streams)


def _streams(names: Sequence[str]) -> str:
    return ("stream " if len(names) == 1 else "streams ") + ", ".join(names)
