"""``make clean``'s helper: remove what ``cw dev`` keeps (``.cw/``, and the PostgreSQL folder
it may keep under the temporary folder when run as root), unless a server still uses it.

Stops nothing. Standard library only: runs with the system ``python3``, without the venv::

    python3 -m services.devstack.cleanup [PROJECT_DIR]
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from services.devstack.system import postgres_fallback_dir


def _running_postgres(root: Path) -> int | None:
    """The pid of a live postmaster using the cluster in ``root``, if any."""
    try:
        first = (root / "data" / "postmaster.pid").read_text().split("\n", 1)[0]
        pid = int(first.strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def _processes_using(folder: Path) -> list[int]:
    """Live processes whose command line names ``folder`` (Linux; elsewhere: none known)."""
    needle = str(folder).encode()
    found: list[int] = []
    proc = Path("/proc")
    if not proc.is_dir():
        return found
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    project = Path(args[0] if args else ".").resolve()
    data = project / ".cw"
    postgres_roots = [data / "postgres", postgres_fallback_dir(data / "postgres")]
    busy = {pid for root in postgres_roots if (pid := _running_postgres(root)) is not None}
    busy.update(_processes_using(data))
    if busy:
        pids = ", ".join(str(pid) for pid in sorted(busy))
        print(f"not removing {data}: processes {pids} use it; stop cw dev first")
        return 1
    for folder in [data, postgres_roots[1]]:
        if folder.exists():
            print(f"removing {folder}")
            shutil.rmtree(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
