"""The queries of the Grafana dashboards (deploy/grafana/dashboards), for tests that run them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DASHBOARDS = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "dashboards"


def dashboards() -> dict[str, dict[str, Any]]:
    return {
        path.name: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(DASHBOARDS.glob("*.json"))
    }


def targets() -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(dashboard file, panel title, target) for every query of every panel."""
    for name, board in dashboards().items():
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                yield name, panel["title"], target


def promql() -> list[tuple[str, str]]:
    return [(f"{name}: {title}", t["expr"]) for name, title, t in targets() if "expr" in t]


def sql() -> list[tuple[str, str]]:
    return [(f"{name}: {title}", t["rawSql"]) for name, title, t in targets() if "rawSql" in t]
