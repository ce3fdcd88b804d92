"""A real Prometheus for a test: the project's own rules, its own scrape targets, its own port.

The rules are those of ``deploy/prometheus/rules`` with every duration divided by ``speed_up``
(``5m`` becomes ``10s`` at 30), so that an alert meant to wait minutes fires within seconds;
nothing else in them changes.
"""

from __future__ import annotations

import json
import re
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from services.devstack.system import free_port
from tests.support.system_packages import ensure_binary

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "rules"
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"\b(\d+)(ms|s|m|h|d)\b")


def scaled(text: str, speed_up: float) -> str:
    """``text`` with every Prometheus duration divided by ``speed_up`` (at least 1 s)."""

    def shorter(match: re.Match[str]) -> str:
        seconds = int(match.group(1)) * _UNITS[match.group(2)] / speed_up
        return f"{max(1, round(seconds))}s"

    return _DURATION.sub(shorter, text)


def _scaled_rules(text: str, speed_up: float) -> str:
    # Only expressions and `for:` hold durations; annotations keep their words.
    doc = yaml.safe_load(text)
    for group in doc["groups"]:
        for rule in group["rules"]:
            rule["expr"] = scaled(rule["expr"], speed_up)
            if "for" in rule:
                rule["for"] = scaled(rule["for"], speed_up)
    return yaml.safe_dump(doc, allow_unicode=True)


class PrometheusServer:
    def __init__(self, folder: Path, targets: dict[str, str], speed_up: float = 30) -> None:
        self.binary = ensure_binary("prometheus", "prometheus")
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        folder.mkdir(parents=True, exist_ok=True)
        rule_files = []
        for rules in sorted(RULES.glob("*.yml")):
            target = folder / rules.name
            target.write_text(_scaled_rules(rules.read_text(encoding="utf-8"), speed_up))
            rule_files.append(str(target))
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": rule_files,
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": [address]}]}
                for job, address in targets.items()
            ],
        }
        self.config = folder / "prometheus.yml"
        self.config.write_text(yaml.safe_dump(config))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = (self.folder / "prometheus.log").open("ab")
        self.proc = subprocess.Popen(
            [
                self.binary,
                f"--config.file={self.config}",
                f"--storage.tsdb.path={self.folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--web.enable-lifecycle",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def log_tail(self) -> str:
        path = self.folder / "prometheus.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-20:])

    def _get(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}{path}{query}", timeout=10) as response:
            body = json.loads(response.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector of ``expr`` now (``/api/v1/query``)."""
        data = self._get("/api/v1/query", query=expr)
        result: list[dict[str, Any]] = data["result"]
        return result if data["resultType"] == "vector" else [{"value": result}]

    def alerts(self) -> list[dict[str, Any]]:
        """Pending and firing alerts (``/api/v1/alerts``)."""
        alerts: list[dict[str, Any]] = self._get("/api/v1/alerts")["alerts"]
        return alerts

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False
