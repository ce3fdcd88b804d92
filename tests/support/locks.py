"""One at a time across processes: test workers (``pytest -n``) and other runs on this machine."""

from __future__ import annotations

import contextlib
import fcntl
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def machine_lock(name: str) -> Iterator[None]:
    """Hold the lock ``name`` (a file in the temporary folder, ``flock``) for the block.

    For steps two workers must not take at once, such as ``apt-get install`` (one dpkg lock) or
    ``npm ci`` into one folder; whoever waited should look again whether the work is still to do.
    """
    path = Path(tempfile.gettempdir()) / f"cw-test-{name}.lock"
    with path.open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(held, fcntl.LOCK_UN)
