"""``contracts/`` is read by publishers in other languages and by every service: it depends on
no service, so the wire names, models and generator can be lifted out on their own."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from contracts import wire
from contracts.generate import CONTRACTS_DIR
from services.common.streams import stream_plans

pytestmark = pytest.mark.unit


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_no_module_under_contracts_imports_services() -> None:
    modules = sorted(CONTRACTS_DIR.rglob("*.py"))
    assert modules, "no modules found under contracts/"
    offenders = {
        str(path.relative_to(CONTRACTS_DIR)): sorted(
            name for name in _imported_modules(path) if name.split(".")[0] == "services"
        )
        for path in modules
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_the_stream_plans_use_the_contract_names() -> None:
    by_name = {plan.config.name: plan.config.subjects for plan in stream_plans()}
    assert by_name == {
        wire.EVENTS_STREAM: [wire.EVENTS_SUBJECTS],
        wire.REMINDERS_STREAM: [wire.REMINDERS_SUBJECTS],
        wire.DEAD_LETTERS_STREAM: [wire.DEAD_LETTERS_SUBJECTS],
    }
