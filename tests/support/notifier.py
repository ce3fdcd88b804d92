"""Running the notifier in tests: a notify file for the fake targets, the notifier in process."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from pathlib import Path

from services.common.settings import Settings
from services.notifier.adapters.metrics import NotifierMetrics
from services.notifier.bootstrap import run_notifier
from tests.support.in_process import service_in_process


def notify_file(path: Path, targets: Sequence[dict[str, object]]) -> Path:
    """Write ``targets`` as a notify file (TOML) and return its path."""
    lines = []
    for t in targets:
        lines.append("[[targets]]")
        for key, value in t.items():
            lines.append(f"{key} = {_toml(value)}")
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return str(value)


def notifier_in_process(
    settings: Settings, metrics: NotifierMetrics | None = None
) -> contextlib.AbstractAsyncContextManager[asyncio.Task[None]]:
    """``run_notifier`` (what ``cw run notifier`` runs) as a task; stopped on the way out."""
    return service_in_process(run_notifier, settings, metrics or NotifierMetrics())


def count(metrics: NotifierMetrics, name: str, **labels: str) -> float:
    """Counter ``name`` (without ``_total``) with ``labels``; 0 if never counted."""
    return metrics.registry.get_sample_value(f"{name}_total", labels) or 0.0
