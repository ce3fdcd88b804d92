"""Other readers of the published contract say what Python says: Node (strict ajv, the AsyncAPI
parser) and check-jsonschema.

The Node packages are pinned in ``tests/node/package-lock.json`` and installed there with
``npm ci`` the first time (``node_modules`` is git-ignored); afterwards a run costs about two
seconds. Without ``node`` and ``npm`` the Node test is skipped and says so.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from contracts import EventRejected, decode_event
from contracts.generate import CONTRACTS_DIR
from tests.support.locks import machine_lock
from tests.unit.test_contract_schema import ACCEPTED, EXAMPLES, REJECTED, REMINDERS, _set
from tests.unit.test_contracts import GOOD

pytestmark = pytest.mark.unit

NODE_DIR = Path(__file__).resolve().parents[1] / "node"
SCHEMAS = sorted((CONTRACTS_DIR / "schema").glob("*.json"))
ENVELOPE = "urn:chuangwei:contracts:v1:envelope"
REMINDER = "urn:chuangwei:contracts:reminders:v1:Reminder"


def _node_packages() -> None:
    """``npm ci`` into tests/node when its node_modules is missing or older than the lock; one
    test worker at a time (``npm ci`` first removes node_modules)."""
    with machine_lock(f"npm-ci-{hashlib.sha256(bytes(NODE_DIR)).hexdigest()[:12]}"):
        if not _node_packages_current():
            _npm_ci()


def _node_packages_current() -> bool:
    lock, installed = NODE_DIR / "package-lock.json", NODE_DIR / "node_modules/.package-lock.json"
    return installed.exists() and installed.stat().st_mtime >= lock.stat().st_mtime


def _npm_ci() -> None:
    done = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"npm ci in {NODE_DIR} failed:\n{done.stdout}\n{done.stderr}"


def _python_accepts(obj: Any) -> bool:
    try:
        decode_event(json.dumps(obj, ensure_ascii=False).encode())
    except EventRejected:
        return False
    return True


@pytest.fixture(scope="module")
def node_report() -> tuple[list[dict[str, Any]], dict[str, Any]]:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are not installed: the contract is not checked with ajv")
    _node_packages()
    cases = [{"schema": ENVELOPE, "instance": e, "python": True} for e in EXAMPLES]
    cases += [
        {"schema": f"urn:chuangwei:contracts:v1:{e['event_type']}", "instance": e, "python": True}
        for e in EXAMPLES
    ]
    cases += [{"schema": REMINDER, "instance": r, "python": True} for r in REMINDERS]
    for _, obj in [*ACCEPTED, *REJECTED]:
        cases.append({"schema": ENVELOPE, "instance": obj, "python": _python_accepts(obj)})
    plan = {
        "schemas": [str(p) for p in SCHEMAS],
        "asyncapi": str(CONTRACTS_DIR / "asyncapi.json"),
        "cases": [{"schema": c["schema"], "instance": c["instance"]} for c in cases],
    }
    done = subprocess.run(
        ["node", str(NODE_DIR / "check.mjs")],
        input=json.dumps(plan, ensure_ascii=False),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return cases, report


def test_every_schema_compiles_in_strict_ajv(
    node_report: tuple[list[dict[str, Any]], dict[str, Any]],
) -> None:
    _, report = node_report
    assert report["warnings"] == []
    assert len(report["compiled"]) == len(SCHEMAS)


def test_ajv_gives_the_verdicts_python_gives(
    node_report: tuple[list[dict[str, Any]], dict[str, Any]],
) -> None:
    cases, report = node_report
    assert len(report["verdicts"]) == len(cases)
    differ = [
        (c["instance"], v["errors"])
        for c, v in zip(cases, report["verdicts"], strict=True)
        if v["valid"] != c["python"]
    ]
    assert differ == []
    assert sum(not c["python"] for c in cases) > 50


def test_ajv_names_the_bad_field(node_report: tuple[list[dict[str, Any]], dict[str, Any]]) -> None:
    cases, report = node_report
    bad = _set(GOOD, "occurred_at", "2023-03-15 10:05:00+08:00")
    (verdict,) = [v for c, v in zip(cases, report["verdicts"], strict=True) if c["instance"] == bad]
    assert any(e.startswith("/occurred_at ") for e in verdict["errors"]), verdict


def test_the_asyncapi_document_has_no_diagnostics(
    node_report: tuple[list[dict[str, Any]], dict[str, Any]],
) -> None:
    _, report = node_report
    assert report["asyncapi"] == []


def test_check_jsonschema_accepts_every_schema() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--check-metaschema", *map(str, SCHEMAS)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_check_jsonschema_accepts_the_example_events(tmp_path: Path) -> None:
    # check-jsonschema reads one instance per file; a sample of each event type is enough.
    files = []
    for event in {e["event_type"]: e for e in EXAMPLES}.values():
        path = tmp_path / f"{event['event_type']}.json"
        path.write_text(json.dumps(event, ensure_ascii=False), encoding="utf-8")
        files.append(str(path))
    done = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--schemafile",
         str(CONTRACTS_DIR / "schema" / "envelope.v1.json"), *files],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
