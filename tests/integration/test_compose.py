"""docker-compose.yml, checked by compose itself (`docker compose config`, or Debian's
`docker-compose`, which validates without a Docker engine) and read for what operators rely on:
every service of the registry runs with a health check on its /healthz, every dependency waits
for health (or for `cw init` to finish), no port is open to the world without a comment saying
why, and every secret comes from the environment, required (`${VAR:?}`)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.devstack.system import nats_server_binary
from services.notifier.domain.targets import NotifyFileInvalid, parse_targets
from services.permissions.domain.users import OPERATOR, SERVICES, password_variable
from services.registry import all_services, setting_name
from tests.support.constraints import constraints
from tests.support.system_packages import ensure_binary

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
REQUIRED = {
    "CW_POSTGRES_PASSWORD": "pg-Secret-1",
    "CW_SERVICE_DB_PASSWORD": "service-Secret-1",
    "CW_READER_PASSWORD": "reader-Secret-1",
    "CW_GRAFANA_ADMIN_PASSWORD": "grafana-Secret-1",
    "CW_NATS_OPERATOR_PASSWORD": "nats-Operator-1",
    "CW_NATS_PROJECTOR_PASSWORD": "nats-Projector-1",
    "CW_NATS_REMINDERS_PASSWORD": "nats-Reminders-1",
    "CW_NATS_NOTIFIER_PASSWORD": "nats-Notifier-1",
}
"""The variables the stack cannot start without."""
ROBOTS = {
    "CW_DINGTALK_URL": "https://oapi.dingtalk.com/robot/send?access_token=t0k3n",
    "CW_DINGTALK_SECRET": "SEC0123456789",
    "CW_WECOM_URL": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k3y",
    "CW_OPS_ROBOT_URL": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=0ps",
}
"""The robots a notify file may name: a bureau sets those it has; compose passes them, empty
when unset (the notifier refuses a file naming an empty one, naming it)."""
SECRET = re.compile(r"PASSWORD|SECRET|TOKEN|_URL$")
WORLD = {"", "0.0.0.0", "::", "[::]"}


@cache
def _compose_command() -> tuple[str, ...]:
    """The compose plugin where Docker has it, else Debian's docker-compose (installed when it is
    missing): both validate the file without a Docker engine."""
    docker = shutil.which("docker")
    if docker:
        plugin = subprocess.run(
            [docker, "compose", "version"], capture_output=True, check=False, timeout=60
        )
        if plugin.returncode == 0:
            return (docker, "compose")
    return (ensure_binary("docker-compose", "docker-compose"),)


def _config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in REQUIRED
        and k not in ROBOTS
        and k not in ("CW_NATS_ADDRESS", "CW_NOTIFY_FILE_HOST")
    }
    return subprocess.run(
        [*_compose_command(), "-f", str(COMPOSE), "config"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**clean, **env},
        check=False,
        timeout=120,
    )


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    done = _config({**REQUIRED, **ROBOTS})
    assert done.returncode == 0, done.stderr
    parsed: dict[str, Any] = yaml.safe_load(done.stdout)
    return parsed


def _raw() -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return raw


def test_the_whole_stack_is_there(config: dict[str, Any]) -> None:
    services = set(config["services"])
    cw = {s.name for s in all_services()}
    assert services >= {"nats", "postgres", "init", "prometheus", "alertmanager", "grafana"} | cw


def test_every_service_of_the_registry_is_checked_on_its_healthz(config: dict[str, Any]) -> None:
    for service in all_services():
        spec = config["services"][service.name]
        assert spec["command"] == ["run", service.name]
        port = str(service.metrics_port)
        assert spec["environment"][setting_name(service.metrics_setting)] == port
        assert spec["environment"]["CW_METRICS_HOST"] == "0.0.0.0"
        test = " ".join(spec["healthcheck"]["test"])
        assert f"http://127.0.0.1:{port}/healthz" in test, (service.name, test)
        # The image has Python and no curl: urlopen raises on 503 (stalled), so the check fails.
        assert test.startswith("CMD python -c import urllib.request"), test


def test_every_long_running_service_has_a_health_check_and_waits_for_health(
    config: dict[str, Any],
) -> None:
    services = config["services"]
    for name, spec in services.items():
        if name != "init":
            assert spec.get("healthcheck", {}).get("test"), f"{name}: no health check"
        for needed, how in _depends_on(spec).items():
            wanted = "service_completed_successfully" if needed == "init" else "service_healthy"
            assert how == wanted, f"{name} waits for {needed} with {how}, not {wanted}"


def _depends_on(spec: dict[str, Any]) -> dict[str, str]:
    given = spec.get("depends_on", {})
    if isinstance(given, list):  # the short form: only started, never healthy
        return dict.fromkeys(given, "service_started")
    return {name: how.get("condition", "service_started") for name, how in given.items()}


def test_no_port_is_open_to_the_world_without_a_comment_saying_why(
    config: dict[str, Any],
) -> None:
    lines = COMPOSE.read_text(encoding="utf-8").splitlines()
    opened = []
    for name, spec in config["services"].items():
        for host, published, target in map(_port, spec.get("ports", [])):
            if host in WORLD:
                opened.append(name)
                assert _commented(lines, f"{published}:{target}"), (
                    f"{name}: port {published} is open to every interface and no comment says why"
                )
            else:
                assert host == "127.0.0.1", (name, host)
    # The operators' browsers, and the district systems (NATS's client port, not monitoring).
    assert sorted(opened) == ["grafana", "nats"]


def _port(given: str | dict[str, Any]) -> tuple[str, str, str]:
    """(host address, published, target) of the short form (docker-compose 1) or the long one."""
    if isinstance(given, dict):
        return given.get("host_ip", ""), str(given["published"]), str(given["target"])
    parts = given.split("/")[0].rsplit(":", 2)
    host = parts[0] if len(parts) == 3 else ""
    return host, parts[-2], parts[-1]


def _commented(lines: list[str], port: str) -> bool:
    """Whether the line publishing ``port`` has a comment, on it or right above it."""
    for i, line in enumerate(lines):
        code = line.split("#")[0]
        if port in code and (code.strip().startswith("-") or "ports:" in code):
            return "#" in line or (i > 0 and lines[i - 1].strip().startswith("#"))
    return False


def test_every_secret_is_required_from_the_environment() -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    for variable, how in re.findall(r"\$\{(\w+)([^}]*)\}", text):
        if variable in ROBOTS:
            assert how == ":-", f"${{{variable}{how}}}: a robot the bureau may not have"
        elif SECRET.search(variable):
            assert how.startswith(":?"), f"${{{variable}{how}}}: a secret must be ${{VAR:?}}"
    for name, spec in _raw()["services"].items():
        for key, value in (spec.get("environment") or {}).items():
            if SECRET.search(key) and key != "CW_NATS_URL" and key not in ROBOTS:
                assert re.search(r"\$\{\w+:\?", str(value)), f"{name}.{key}: not ${{VAR:?}}"
    for variable in REQUIRED:
        done = _config({k: v for k, v in REQUIRED.items() if k != variable})
        assert done.returncode != 0, f"compose accepted the stack without {variable}"
        assert variable in done.stderr, done.stderr


def test_the_read_only_role_exists_for_grafana(config: dict[str, Any]) -> None:
    services = config["services"]
    assert services["init"]["environment"]["CW_READER_PASSWORD"] == REQUIRED["CW_READER_PASSWORD"]
    grafana = services["grafana"]
    assert grafana["environment"]["CW_READER_PASSWORD"] == REQUIRED["CW_READER_PASSWORD"]
    assert (
        grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"]
        == (REQUIRED["CW_GRAFANA_ADMIN_PASSWORD"])
    )
    mounts = " ".join(map(str, grafana["volumes"]))
    assert "deploy/grafana/provisioning:/etc/grafana/provisioning" in mounts
    assert "deploy/grafana/dashboards:/var/lib/grafana/dashboards" in mounts


def test_prometheus_loads_the_compose_scrape_config_beside_the_shared_rules(
    config: dict[str, Any],
) -> None:
    prometheus = config["services"]["prometheus"]
    assert "--config.file=/etc/prometheus/prometheus.compose.yml" in prometheus["command"]
    assert any("deploy/prometheus:/etc/prometheus" in str(v) for v in prometheus["volumes"])
    alertmanager = config["services"]["alertmanager"]
    assert any("deploy/alertmanager:/etc/alertmanager" in str(v) for v in alertmanager["volumes"])


def test_the_notifier_gets_every_variable_its_notify_file_names(config: dict[str, Any]) -> None:
    notifier = config["services"]["notifier"]
    (mount,) = [str(v) for v in notifier["volumes"] if "notify" in str(v)]
    source, inside = mount.split(":")[:2]
    assert notifier["environment"]["CW_NOTIFY_FILE"] == inside
    with Path(source).open("rb") as file:
        targets = parse_targets(tomllib.load(file), notifier["environment"])
    assert {t.url for t in targets} == {ROBOTS["CW_DINGTALK_URL"]}
    assert any(t.secret == ROBOTS["CW_DINGTALK_SECRET"] for t in targets)
    assert [t.name for t in targets if t.alerts] == ["lianyun-dingtalk"]


def test_the_stack_starts_with_only_the_robots_the_bureau_has(tmp_path: Path) -> None:
    """A bureau with a WeCom robot only: its own notify file, CW_WECOM_URL and nothing else;
    the DingTalk variables the example names are not required."""
    own = tmp_path / "notify.toml"
    own.write_text(
        '[[targets]]\nname = "wecom"\nkind = "wecom"\nurl_env = "CW_WECOM_URL"\nalerts = true\n',
        encoding="utf-8",
    )
    wecom = {"CW_WECOM_URL": ROBOTS["CW_WECOM_URL"]}
    done = _config({**REQUIRED, **wecom, "CW_NOTIFY_FILE_HOST": str(own)})
    assert done.returncode == 0, done.stderr
    notifier = yaml.safe_load(done.stdout)["services"]["notifier"]
    (mount,) = [str(v) for v in notifier["volumes"] if "notify" in str(v)]
    assert mount.startswith(f"{own}:")
    (target,) = parse_targets(tomllib.loads(own.read_text()), notifier["environment"])
    assert target.url == ROBOTS["CW_WECOM_URL"] and target.alerts
    # The example (DingTalk) without its variables: compose starts, the notifier says which.
    done = _config(REQUIRED)
    assert done.returncode == 0, done.stderr
    env = yaml.safe_load(done.stdout)["services"]["notifier"]["environment"]
    with pytest.raises(NotifyFileInvalid, match="the variable CW_DINGTALK_URL is not set"):
        parse_targets(tomllib.loads((ROOT / "deploy" / "notify.example.toml").read_text()), env)


def test_the_images_run_what_the_tests_run(config: dict[str, Any]) -> None:
    """The nats image is the nats-server version the tests run; the cw image installs every
    runtime dependency at the version the tests ran (deploy/constraints.txt)."""
    said = subprocess.run(
        [nats_server_binary(), "--version"], capture_output=True, text=True, check=True
    ).stdout
    version = re.search(r"v?(\d+\.\d+\.\d+)", said)
    assert version is not None, said
    assert config["services"]["nats"]["image"] == f"nats:{version.group(1)}-alpine"
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text(encoding="utf-8")
    assert "--constraint deploy/constraints.txt" in dockerfile
    assert re.search(r"^FROM python:\d+\.\d+\.\d+-slim", dockerfile, re.M), dockerfile
    written = (ROOT / "deploy" / "constraints.txt").read_text(encoding="utf-8")
    assert written == constraints(), (
        "deploy/constraints.txt is not what the tests run: "
        ".venv/bin/python -m tests.support.constraints > deploy/constraints.txt"
    )


def test_each_cw_service_is_its_own_nats_user(config: dict[str, Any]) -> None:
    services = config["services"]
    # nats-server reads each user's password from its environment (deploy/nats-users.conf).
    assert {password_variable(r) for r in (OPERATOR, *SERVICES)} <= set(
        services["nats"]["environment"]
    )
    users = {"init": OPERATOR, **{s: s for s in SERVICES}}
    for name, user in users.items():
        env = services[name]["environment"]
        password = REQUIRED[password_variable(user)]
        assert env["CW_NATS_URL"] == f"nats://{user}:{password}@nats:4222", name
        if name != "init":
            assert env["CW_NATS_INBOX_PREFIX"] == f"_INBOX_{user}"
