"""``cw streams backup DIR`` and ``cw streams restore DIR [--replace]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nats.errors

from services.backups import service
from services.backups.adapters.folder import Folder, FolderRefused
from services.backups.adapters.snapshots import SnapshotFailed
from services.backups.bootstrap import snapshots
from services.backups.domain.manifest import MANIFEST, BackupUnusable
from services.common.campaign import load_campaign
from services.common.connect import NatsAccess, Refused, Unreachable
from services.common.runtime import run
from services.common.settings import Settings

EXIT_REFUSED = 1
"""The folder, the backup or an existing stream stood in the way; nothing was changed."""
EXIT_UNREACHABLE = 2
EXIT_NATS_REFUSED = 3


def _said(command: str, text: str) -> None:
    print(f"cw streams {command}: {text}", file=sys.stderr)


async def _backup(access: NatsAccess, folder: Folder) -> None:
    async with snapshots(access) as s:
        await service.backup(s, folder)


async def _restore(access: NatsAccess, folder: Folder, replace: bool) -> None:
    zone = load_campaign(Settings().campaign_file).timezone
    async with snapshots(access) as s:
        await service.restore(s, folder, replace=replace, zone=zone)


def _handled(command: str, work: object) -> int:
    try:
        run(work)  # type: ignore[arg-type]
    except (FolderRefused, BackupUnusable, service.RestoreRefused) as exc:
        _said(command, str(exc))
        return EXIT_REFUSED
    except Refused as exc:
        _said(command, f"{exc} (README, 'Who may do what': the operator's user)")
        return EXIT_NATS_REFUSED
    except Unreachable as exc:
        _said(command, str(exc))
        return EXIT_UNREACHABLE
    except (SnapshotFailed, nats.errors.Error, TimeoutError) as exc:
        text = " ".join(str(exc).split()) or type(exc).__name__
        _said(command, f"NATS: {text}")
        return EXIT_UNREACHABLE
    return 0


def _backup_command(args: argparse.Namespace) -> int:
    access = NatsAccess.from_settings(Settings())
    code = _handled("backup", _backup(access, Folder(args.folder)))
    if code == 0:
        print(f"backup written to {args.folder} ({MANIFEST} last)")
    return code


def _restore_command(args: argparse.Namespace) -> int:
    access = NatsAccess.from_settings(Settings())
    return _handled("restore", _restore(access, Folder(args.folder), args.replace))


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "streams",
        help="back up the streams to a folder, or restore them: cw streams backup|restore",
        description="JetStream snapshots of CW_EVENTS, CW_REMINDERS and CW_DEAD_LETTERS, as "
        "the operator's NATS user (docs/backups.md).",
    )
    streams = p.add_subparsers(dest="streams_command", required=True, metavar="COMMAND",
                               help="backup | restore")  # fmt: skip
    b = streams.add_parser(
        "backup",
        help="snapshot every stream into a new folder",
        description="Snapshot CW_EVENTS, CW_REMINDERS and CW_DEAD_LETTERS (messages checked, "
        "consumers left out: each consumer starts again from its checkpoint in PostgreSQL) "
        f"into DIR, one <STREAM>.snapshot each, then {MANIFEST}: each stream's configuration "
        "and state (messages, first and last sequence), the time, each file's size and "
        "SHA-256. Back up PostgreSQL first (pg_dump), then the streams: the streams then hold "
        "every message the database's checkpoints name.",
        epilog="exit status: 0 written; 1 DIR is not empty or cannot be written, or a stream "
        "is missing (nothing written); 2 NATS could not be reached or broke off a snapshot; 3 "
        "NATS refused this user (the operator's may)",
    )
    b.add_argument("folder", type=Path, metavar="DIR", help="a new or empty folder")
    b.set_defaults(handler=_backup_command)
    r = streams.add_parser(
        "restore",
        help="restore every stream of a backup folder",
        description="Check every snapshot of DIR against its manifest, then restore each "
        "stream with its messages at their sequences, and say what was restored. A stream "
        "that exists on the server is not overwritten unless --replace is given: then it is "
        "deleted first.",
        epilog="exit status: 0 restored; 1 refused before anything changed (a stream exists "
        "without --replace, DIR holds no finished backup, a file does not match the manifest); "
        "2 NATS could not be reached or refused the restore; 3 NATS refused this user (the "
        "operator's may)",
    )
    r.add_argument("folder", type=Path, metavar="DIR", help="what cw streams backup wrote")
    r.add_argument(
        "--replace", action="store_true", help="delete a stream that exists and restore it"
    )
    r.set_defaults(handler=_restore_command)
