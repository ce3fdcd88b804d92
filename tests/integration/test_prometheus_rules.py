"""The operators' configuration, checked by the real tools: Prometheus's scrape configuration and
rules (`promtool check config`), every alert's unit tests (`promtool test rules`), and the
Alertmanager configuration (`amtool check-config`)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.registry import all_services
from tests.support.system_packages import ensure_binary

pytestmark = pytest.mark.integration

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
PROMETHEUS = DEPLOY / "prometheus"
RULES = PROMETHEUS / "rules"
RULE_TESTS = sorted((PROMETHEUS / "tests").glob("*.test.yml"))


def _run(*command: str) -> str:
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, f"{' '.join(command)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus.compose.yml"])
def test_prometheus_config_and_rules_are_valid(config: str) -> None:
    promtool = ensure_binary("promtool", "prometheus")
    out = _run(promtool, "check", "config", str(PROMETHEUS / config))
    assert "SUCCESS" in out


def test_both_scrape_configs_scrape_every_service_on_its_port_with_the_same_rules() -> None:
    """prometheus.yml (one host) and prometheus.compose.yml (docker-compose's service names):
    a job cw-<service> per service of the registry, on its metrics port; one set of rules."""
    ports = {f"cw-{s.name}": (s.name, s.metrics_port) for s in all_services()}
    host, compose = (
        _yaml(PROMETHEUS / "prometheus.yml"),
        _yaml(PROMETHEUS / "prometheus.compose.yml"),
    )
    assert (
        host["rule_files"] == compose["rule_files"] == ["rules/recording.yml", "rules/alerts.yml"]
    )
    for config, where in ((host, lambda name: "127.0.0.1"), (compose, lambda name: name)):
        jobs = {
            job["job_name"]: [t for c in job["static_configs"] for t in c["targets"]]
            for job in config["scrape_configs"]
        }
        assert jobs == {job: [f"{where(name)}:{port}"] for job, (name, port) in ports.items()}


def test_every_alert_passes_its_promtool_tests() -> None:
    promtool = ensure_binary("promtool", "prometheus")
    assert RULE_TESTS
    out = _run(promtool, "test", "rules", *map(str, RULE_TESTS))
    assert "SUCCESS" in out and "FAILED" not in out


def test_every_alert_and_recording_rule_has_a_test_case() -> None:
    alerts = {
        rule["alert"] for group in _yaml(RULES / "alerts.yml")["groups"] for rule in group["rules"]
    }
    records = {
        rule["record"]
        for group in _yaml(RULES / "recording.yml")["groups"]
        for rule in group["rules"]
    }
    tested_alerts: dict[str, set[bool]] = {}
    tested_exprs: set[str] = set()
    for path in RULE_TESTS:
        for case in _yaml(path)["tests"]:
            for check in case.get("alert_rule_test", []):
                tested_alerts.setdefault(check["alertname"], set()).add(bool(check["exp_alerts"]))
            tested_exprs |= {check["expr"] for check in case.get("promql_expr_test", [])}
    # Each alert is seen firing at least once; each recording rule is evaluated.
    assert {a for a, fired in tested_alerts.items() if True in fired} >= alerts
    assert records <= tested_exprs


ALLOWED_LABELS = {
    "job", "instance", "le", "reason", "stage", "kind", "district", "phase", "venue_kind",
    "inspection_kind", "status", "target_kind", "outcome", "event_type", "stream",
}  # fmt: skip


def test_rules_group_and_speak_only_of_allowed_labels() -> None:
    """No alert groups by, or names, a venue, issue, order or person: those are not labels."""
    text = "\n".join(p.read_text(encoding="utf-8") for p in RULES.glob("*.yml"))
    grouped = {
        label.strip()
        for clause in re.findall(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", text)
        for label in clause.split(",")
        if label.strip()
    }
    named = set(re.findall(r"\$labels\.(\w+)", text))
    assert grouped | named <= ALLOWED_LABELS, (grouped | named) - ALLOWED_LABELS


def test_alertmanager_config_is_valid() -> None:
    amtool = ensure_binary("amtool", "prometheus-alertmanager")
    out = _run(amtool, "check-config", str(DEPLOY / "alertmanager" / "alertmanager.yml"))
    assert "SUCCESS" in out
