"""New credentials, and the files that keep them (mode 0600, never overwritten)."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import nkeys


@dataclass(frozen=True, slots=True)
class NKey:
    seed: str
    """The secret: whoever holds it is the user (``CW_NATS_CREDS`` names the file)."""
    public_key: str
    """What the server's configuration holds: no secret."""


def new_nkey() -> NKey:
    seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
    return NKey(seed.decode(), nkeys.from_seed(seed).public_key.decode())


def new_password() -> str:
    """URL-safe, so that it can stand in ``CW_NATS_URL`` as it is."""
    return secrets.token_urlsafe(24)


def write_secret(path: Path, text: str) -> None:
    """Create ``path`` readable by its owner only; an existing file is an error
    (``FileExistsError``): a credential is never replaced behind someone's back."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text if text.endswith("\n") else text + "\n")


def kept_password(path: Path) -> str:
    """The password in ``path``, made (0600) on first use: the same across restarts."""
    if path.is_file():
        return path.read_text(encoding="utf-8").strip()
    password = new_password()
    write_secret(path, password)
    return password
