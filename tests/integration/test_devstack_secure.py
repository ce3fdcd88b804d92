"""``cw dev --secure``: its own NATS lets in only its users, each with its own permissions, the
passwords stay in 0600 files, and the lines it prints work when pasted."""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import subprocess
from pathlib import Path

import nats
import nats.errors
import pytest

from services.devstack.cli import dev
from tests.support.processes import EXAMPLES, ROOT
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


def _pasted(line: str, then: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", "-c", f"{line} {then}"],
        capture_output=True, text=True, timeout=120, cwd=ROOT, check=False,
    )  # fmt: skip


async def test_cw_dev_secure_lets_in_only_its_users_and_says_how_to_be_them(
    tmp_path: Path,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CW_DATABASE_URL", database_url)
    monkeypatch.delenv("CW_NATS_URL", raising=False)
    monkeypatch.delenv("CW_DISTRICT", raising=False)
    out: list[str] = []

    def output() -> str:
        out.append(capsys.readouterr().out)
        return "".join(out)

    task = asyncio.create_task(dev(project_dir=tmp_path, stack_only=True, secure=True))
    try:
        await eventually(lambda: asyncio.sleep(0, "Ctrl-C stops" in output()), within=60,
                         what=output, running=[task])  # fmt: skip
        text = output()
        folder = tmp_path / ".cw" / "nats-auth"
        files = sorted(p.name for p in folder.iterdir())
        assert files == ["nats.conf", "notifier.password", "operator.password",
                         "projector.password", "publisher-320703.password",
                         "reminders.password"]  # fmt: skip
        assert {stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()} == {0o600}
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        passwords = [p.read_text().strip() for p in folder.glob("*.password")]
        assert [p for p in passwords if p in text] == []

        url = next(line for line in text.splitlines() if "own nats-server" in line).split()[1]
        with pytest.raises(nats.errors.Error):
            await nats.connect(url, max_reconnect_attempts=0, allow_reconnect=False)

        operator = next(line for line in text.splitlines() if "as the operator" in line)
        operator = operator.split(":  ", 1)[1]
        done = await asyncio.to_thread(_pasted, operator + ";", ".venv/bin/cw init")
        assert done.returncode == 0, done.stdout + done.stderr
        publisher = next(line for line in text.splitlines() if "publisher:" in line)
        publisher = publisher.split(":  ", 1)[1].removesuffix(f" {EXAMPLES.relative_to(ROOT)}")
        publisher = publisher.removesuffix(" .venv/bin/cw publish")
        done = await asyncio.to_thread(
            _pasted, publisher, f".venv/bin/cw publish --no-progress {EXAMPLES}"
        )
        assert done.returncode == 0, done.stdout + done.stderr
        done = await asyncio.to_thread(_pasted, publisher, ".venv/bin/cw dlq list")
        assert done.returncode == 2 and "operator's" in done.stdout
    finally:
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C
        assert await asyncio.wait_for(task, 30) == 0
