"""The fault suite at full size: every case of ``tests/support/faults.py`` against servers of its
own, and a table of figures written to ``bench/faults.md``.

    make faults                                   # or:
    .venv/bin/python bench/faults.py [--case NAME ...] [--small] [--out bench/faults.md]

Each case starts its own nats-server and creates a database on the PostgreSQL the tests use
(``CW_TEST_DATABASE_URL``, else the one on 127.0.0.1:5432, else a server of its own), dropped at
the end. Nothing is asserted: the figures are printed and written down.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

# The cases are the tests' (tests/support/faults.py), which the package does not install.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.devstack.system import nats_server_binary
from tests.support.faults import CASES, SMALL, Figures, Lab, Sizes
from tests.support.postgres import postgres_admin_url

ROOT = Path(__file__).resolve().parents[1]
TZ = ZoneInfo("Asia/Shanghai")
HEADER = (
    "| case | events | lost | doubled | recovery | `cw audit` | note |\n"
    "|---|---|---|---|---|---|---|"
)


def row(fig: Figures) -> str:
    recovery = "never" if fig.recovery_s is None else f"{fig.recovery_s:.2f} s"
    doubled = str(fig.doubled)
    if fig.doubled_allowed:
        doubled += f" (≤ {fig.doubled_allowed} allowed)"
    return (
        f"| {fig.case} | {fig.events:,} | {fig.lost} | {doubled} | {recovery} | {fig.audit} "
        f"| {fig.note} |"
    )


def _run(*argv: str) -> str:
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
    return done.stdout.strip() or done.stderr.strip()


def machine() -> str:
    nats_version = _run(str(nats_server_binary()), "--version")
    return (
        f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {nats_version}"
    )


def commit() -> str:
    head = _run("git", "rev-parse", "--short", "HEAD")
    dirty = _run("git", "status", "--porcelain", "--untracked-files=no")
    return f"{head}{' (with uncommitted changes)' if dirty else ''}"


def report(figures: list[Figures], command: str, sizes: Sizes, took: float, code: str) -> str:
    when = datetime.now(TZ).strftime("%Y-%m-%d %H:%M")
    lines = [
        "# Fault suite: figures",
        "",
        f"- date: {when} (Asia/Shanghai)",
        f"- commit: {code}",
        f"- machine: {machine()}",
        f"- command: {command} ({took / 60:.1f} min)",
        f"- sizes: {sizes}",
        "",
        "What each column means: *events* published in the case; *lost*: published and never "
        "projected (or, for the reminders and the notifier, due and never published or "
        "delivered; for hostile input, neither projected nor dead-lettered with a reason); "
        "*doubled*: projected, published or delivered more than once; *recovery*: from the "
        "fault's end (restart, reconnection, the standby's takeover, the swap) until the "
        "consumer had caught up (its checkpoint at the stream's last sequence), measured, not "
        "asserted; *`cw audit`*: the real command run at the end of the case.",
        "",
        HEADER,
        *(row(fig) for fig in figures),
        "",
        "The cases are in `tests/support/faults.py`; `tests/e2e/test_faults.py` runs them at "
        "small sizes in `make test` and asserts lost = 0, doubled = 0 (the notifier: at most "
        "the request in flight at each kill) and a clean audit.",
        "",
    ]
    return "\n".join(lines)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--case", action="append", choices=list(CASES), help="only these")
    parser.add_argument("--small", action="store_true", help="the sizes of make test")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "faults.md")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    sizes = SMALL if args.small else Sizes()
    command = f"`{shlex.join(['.venv/bin/python', 'bench/faults.py', *sys.argv[1:]])}`"
    if os.environ.get("MAKELEVEL"):  # set by make for the commands it runs
        command = f"`make faults`, which runs {command}"
    started_at = commit()  # what ran, whatever is committed while it runs
    print(f"machine: {machine()}\ncommit: {started_at}\n{sizes}")
    # Ctrl-C or a kill: each case's own clean-up (services, servers, database) still runs.
    main_task = asyncio.current_task()
    assert main_task is not None
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, main_task.cancel)
    figures = []
    began = time.monotonic()
    folder = Path(tempfile.mkdtemp(prefix="cw-faults-"))
    try:
        with postgres_admin_url(uuid.uuid4().hex[:8]) as admin_url:
            lab = Lab(admin_url, folder)
            for name in args.case or list(CASES):
                started = time.monotonic()
                print(f"{name}: running", flush=True)
                fig = await CASES[name](lab, sizes)
                figures.append(fig)
                print(f"{name}: {time.monotonic() - started:.0f} s\n  {row(fig)}", flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    text = report(figures, command, sizes, time.monotonic() - began, started_at)
    args.out.write_text(text, encoding="utf-8")
    print(f"written to {args.out}")
    bad = [f for f in figures if f.lost or f.doubled > f.doubled_allowed or not f.audit_clean]
    return 1 if bad else 0


if __name__ == "__main__":
    from services.common.runtime import run

    sys.exit(run(main()))
