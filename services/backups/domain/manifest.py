"""What a backup of the streams holds, and what a restore may do with it. Pure.

A backup is a folder: one JetStream snapshot per stream (``<STREAM>.snapshot``, the server's own
format, opaque here) and ``manifest.json``, written last, that says what each file is: the
stream's configuration and state as the server gave them with the snapshot, the file's size and
SHA-256. A folder without a manifest is an unfinished backup.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

FORMAT = 1
"""The manifest's format; a restore refuses another."""
MANIFEST = "manifest.json"


class BackupUnusable(ValueError):
    """The folder is not a backup a restore can use; the message says why."""


def snapshot_file(stream: str) -> str:
    return f"{stream}.snapshot"


@dataclass(frozen=True, slots=True)
class StreamBackup:
    """One stream's snapshot in the folder."""

    name: str
    file: str
    size: int
    """Bytes of the snapshot file."""
    sha256: str
    config: Mapping[str, Any]
    """The stream's configuration as the server gave it (JSON): what the restore sends back."""
    state: Mapping[str, Any]
    """The stream's state at the snapshot (messages, bytes, first and last sequence)."""

    @property
    def messages(self) -> int:
        return int(self.state.get("messages", 0))

    @property
    def first_seq(self) -> int:
        return int(self.state.get("first_seq", 0))

    @property
    def last_seq(self) -> int:
        return int(self.state.get("last_seq", 0))

    @property
    def stream_bytes(self) -> int:
        return int(self.state.get("bytes", 0))

    def summary(self) -> str:
        """``1,204 messages, sequences 1–1,204, 312.4 KiB stored (snapshot 41.0 KiB)``"""
        if self.messages == 0:
            held = f"no messages (last sequence {self.last_seq:,})"
        else:
            held = f"{self.messages:,} messages, sequences {self.first_seq:,}–{self.last_seq:,}"
        return f"{held}, {size_text(self.stream_bytes)} stored (snapshot {size_text(self.size)})"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "file": self.file,
            "size": self.size,
            "sha256": self.sha256,
            "messages": self.messages,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "bytes": self.stream_bytes,
            "config": dict(self.config),
            "state": dict(self.state),
        }


@dataclass(frozen=True, slots=True)
class Manifest:
    created_at: datetime
    """When the backup began (aware)."""
    finished_at: datetime
    server: str
    """The nats-server version the snapshots came from."""
    streams: tuple[StreamBackup, ...] = field(default_factory=tuple)

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": FORMAT,
                "created_at": self.created_at.isoformat(),
                "finished_at": self.finished_at.isoformat(),
                "server": self.server,
                "streams": [s.to_json() for s in self.streams],
            },
            ensure_ascii=False,
            indent=2,
        )

    def stream(self, name: str) -> StreamBackup:
        for s in self.streams:
            if s.name == name:
                return s
        raise BackupUnusable(f"{MANIFEST} holds no stream {name}")


def parse_manifest(text: str) -> Manifest:
    """A manifest read back; ``BackupUnusable`` names what is wrong with it."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise BackupUnusable(f"{MANIFEST} is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise BackupUnusable(f"{MANIFEST} is not a JSON object")
    if data.get("format") != FORMAT:
        raise BackupUnusable(f"{MANIFEST} has format {data.get('format')!r}, not {FORMAT}")
    try:
        streams = tuple(
            StreamBackup(
                name=str(s["name"]),
                file=str(s["file"]),
                size=int(s["size"]),
                sha256=str(s["sha256"]),
                config=dict(s["config"]),
                state=dict(s["state"]),
            )
            for s in data["streams"]
        )
        return Manifest(
            created_at=datetime.fromisoformat(data["created_at"]),
            finished_at=datetime.fromisoformat(data["finished_at"]),
            server=str(data.get("server", "")),
            streams=streams,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise BackupUnusable(f"{MANIFEST} is missing or mistypes {exc}") from None


def checksum_problem(backup: StreamBackup, size: int, sha256: str) -> str | None:
    """Why the file read back is not the one the manifest describes, or ``None``."""
    if size != backup.size:
        return f"{backup.file} has {size:,} bytes, the manifest says {backup.size:,}"
    if sha256 != backup.sha256:
        return f"{backup.file}'s SHA-256 differs from the manifest's: the file is damaged"
    return None


def blocked(wanted: Sequence[str], existing: Iterable[str], *, replace: bool) -> list[str]:
    """The streams a restore would overwrite without leave (``--replace``), in order."""
    if replace:
        return []
    have = set(existing)
    return [name for name in wanted if name in have]


class Digest:
    """Size and SHA-256 of bytes seen in chunks."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.size = 0

    def update(self, chunk: bytes) -> None:
        self._hash.update(chunk)
        self.size += len(chunk)

    @property
    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def size_text(size: int) -> str:
    """``512 B``, ``41.0 KiB``, ``3.2 MiB``, ``1.1 GiB``"""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
