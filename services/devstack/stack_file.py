"""``.cw/stack.env``: which stack a running ``cw dev`` uses, for ``cw`` commands run from the
project folder in another shell.

``cw dev`` writes it once its servers are up (its pid and the ``CW_*`` URLs, mode 0600: a URL
may hold a password) and removes it when it stops. A ``cw`` command run from the project folder
with neither ``CW_NATS_URL`` nor ``CW_DATABASE_URL`` set uses the stack it names while that
``cw dev`` is alive, and says so; a file whose pid is dead (``cw dev`` was killed) is ignored.
The lines read like a shell's (``set -a; . .cw/stack.env; set +a`` sets them in any shell).
"""

from __future__ import annotations

import contextlib
import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

FOLDER = ".cw"
NAME = "stack.env"
PID = "CW_DEV_PID"
"""The pid of the ``cw dev`` that wrote the file (not a setting: the settings ignore it)."""
URLS = ("CW_NATS_URL", "CW_DATABASE_URL", "CW_READER_DATABASE_URL")
"""What the file may name, and what a command takes from it."""


@dataclass(frozen=True, slots=True)
class RunningStack:
    pid: int
    env: dict[str, str]
    """``CW_NATS_URL``, ``CW_DATABASE_URL`` and, when ``cw dev`` made the read-only role,
    ``CW_READER_DATABASE_URL``."""
    path: Path


def stack_file(project_dir: Path) -> Path:
    return project_dir / FOLDER / NAME


def write_stack_file(project_dir: Path, env: Mapping[str, str], pid: int | None = None) -> Path:
    """Write the file for this process (``pid``: ``cw dev``'s own), 0600 from its creation."""
    path = stack_file(project_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        f"{PID}={pid or os.getpid()}",
        *(f"{k}={shlex.quote(env[k])}" for k in URLS if env.get(k)),
    ]
    temporary = path.with_name(f".{NAME}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")
    os.replace(temporary, path)  # a reader never sees half a file
    return path


def remove_stack_file(project_dir: Path, pid: int | None = None) -> None:
    """Remove the file if this process (``pid``) wrote it, and ``.cw/`` if that leaves it empty
    (``cw dev`` on servers it found keeps nothing else there)."""
    path = stack_file(project_dir)
    found = _read(path)
    if found is None or found.pid != (pid or os.getpid()):
        return
    with contextlib.suppress(OSError):
        path.unlink()
    with contextlib.suppress(OSError):
        path.parent.rmdir()  # only when empty


def running_stack(project_dir: Path) -> RunningStack | None:
    """The stack a live ``cw dev`` wrote down in ``project_dir``; ``None`` when there is no file
    or its ``cw dev`` is gone."""
    found = _read(stack_file(project_dir))
    if found is None or not _alive(found.pid):
        return None
    return found


def _read(path: Path) -> RunningStack | None:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    values: dict[str, str] = {}
    for line in text.splitlines():
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            return None
        if len(words) == 1 and "=" in words[0]:
            key, value = words[0].split("=", 1)
            values[key] = value
    try:
        pid = int(values.get(PID, ""))
    except ValueError:
        return None
    env = {k: values[k] for k in URLS if values.get(k)}
    if "CW_NATS_URL" not in env or "CW_DATABASE_URL" not in env:
        return None
    return RunningStack(pid, env, path)


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, another user's
    return True
