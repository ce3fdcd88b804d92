"""The backup folder on disk: snapshot files written under a temporary name and renamed when
whole, the manifest written last (so a folder with a manifest is a finished backup)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from services.backups.domain.manifest import MANIFEST, BackupUnusable, Digest, Manifest
from services.backups.domain.manifest import parse_manifest as parse

READ_BYTES = 128 * 1024


class FolderRefused(RuntimeError):
    """The folder cannot take a backup (not empty, not writable); the message says why."""


class Folder:
    def __init__(self, path: Path) -> None:
        self.path = path

    def prepare(self) -> None:
        """Make the folder; refuse one that holds anything (a backup is never mixed with
        another, nor overwritten)."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            if any(self.path.iterdir()):
                raise FolderRefused(f"{self.path} is not empty: give a new folder for each backup")
            probe = self.path / ".cw-write-test"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise FolderRefused(f"cannot write to {self.path}: {exc.strerror}") from None

    def writer(self, name: str) -> SnapshotWriter:
        return SnapshotWriter(self.path / name)

    def write_manifest(self, manifest: Manifest) -> None:
        part = self.path / (MANIFEST + ".part")
        with open(part, "w", encoding="utf-8") as out:
            out.write(manifest.to_json() + "\n")
            out.flush()
            os.fsync(out.fileno())
        part.replace(self.path / MANIFEST)
        _sync_dir(self.path)

    def manifest(self) -> Manifest:
        try:
            text = (self.path / MANIFEST).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise BackupUnusable(
                f"{self.path} holds no {MANIFEST}: not a backup, or one that did not finish"
            ) from None
        except OSError as exc:
            raise BackupUnusable(f"cannot read {self.path / MANIFEST}: {exc.strerror}") from None
        return parse(text)

    def digest(self, name: str) -> tuple[int, str]:
        """Size and SHA-256 of a file of the folder."""
        h = hashlib.sha256()
        size = 0
        try:
            with open(self.path / name, "rb") as f:
                while chunk := f.read(READ_BYTES):
                    h.update(chunk)
                    size += len(chunk)
        except OSError as exc:
            raise BackupUnusable(f"cannot read {self.path / name}: {exc.strerror}") from None
        return size, h.hexdigest()

    def chunks(self, name: str, size: int = READ_BYTES) -> Iterator[bytes]:
        with open(self.path / name, "rb") as f:
            while chunk := f.read(size):
                yield chunk


class SnapshotWriter:
    """One snapshot file: written to ``<name>.part``, renamed when the snapshot is whole."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.part = path.with_name(path.name + ".part")
        self.digest = Digest()
        self._file: BinaryIO | None = None

    def __enter__(self) -> SnapshotWriter:
        self._file = open(self.part, "wb")  # closed in __exit__
        return self

    def write(self, chunk: bytes) -> None:
        assert self._file is not None
        self._file.write(chunk)
        self.digest.update(chunk)

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        assert self._file is not None
        if exc_type is None:
            self._file.flush()
            os.fsync(self._file.fileno())
        self._file.close()
        if exc_type is None:
            self.part.replace(self.path)
        else:
            self.part.unlink(missing_ok=True)


def _sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
