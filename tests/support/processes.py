"""``cw`` as the user runs it: commands and the projector in processes of their own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "contracts" / "examples" / "events.jsonl"


def cw_env(nats_url: str, database_url: str, **settings: str) -> dict[str, str]:
    """The environment of a ``cw`` process: the test's servers plus ``CW_<NAME>`` settings."""
    env = {**os.environ, "CW_NATS_URL": nats_url, "CW_DATABASE_URL": database_url}
    env.update({f"CW_{name.upper()}": value for name, value in settings.items()})
    return env


def cw(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run one ``cw`` command to its end."""
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


class ProjectorProcess:
    """``cw run projector`` (or another ``service``) in a process of its own, its output in
    ``log``."""

    def __init__(self, env: dict[str, str], log: Path, service: str = "projector") -> None:
        self.env, self.log, self.service = env, log, service
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "services.cli", "run", self.service],
                env=self.env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        """``kill -9``: no chance to finish a batch or to acknowledge."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(30)

    def ensure_gone(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])
