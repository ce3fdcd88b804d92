"""The registry of services: a second service is one line, and `cw run`, `cw dev` see it."""

from __future__ import annotations

import asyncio
import socket
import sys

import pytest
from prometheus_client import CollectorRegistry

from services import registry
from services.cli import build_parser, main
from services.common.settings import Settings
from services.devstack.cli import DevService, metrics_ports, registered_services
from services.registry import MetricsPortTaken, RunnableService, start_metrics_server

pytestmark = pytest.mark.unit

ran: list[Settings] = []


class Refused(Exception):
    pass


async def _fake_run(settings: Settings, stop: asyncio.Event) -> None:
    ran.append(settings)
    if settings.campaign_file is not None and settings.campaign_file.name == "refuse.toml":
        raise Refused("another one holds it")


async def _fake_ensure(settings: Settings) -> list[str]:
    return ["tally: tables ready"]


TALLY = RunnableService(
    name="tally",
    summary="fake tally",
    run=_fake_run,
    ensure=_fake_ensure,
    metrics_port=9475,
    exits={Refused: 75},
)


@pytest.fixture
def second_service(monkeypatch: pytest.MonkeyPatch) -> None:
    real = registry.all_services()
    monkeypatch.setattr(registry, "all_services", lambda: (*real, TALLY))
    monkeypatch.delenv("CW_METRICS_PORT", raising=False)
    monkeypatch.delenv("CW_NOTIFY_FILE", raising=False)
    ran.clear()


def _runs(name: str) -> bool:
    """Whether ``cw run NAME`` is accepted."""
    try:
        return bool(build_parser().parse_args(["run", name]).service == name)
    except SystemExit:
        return False


def test_the_projector_is_registered() -> None:
    projector = registry.by_name("projector")
    assert projector.metrics_port == 9464
    assert projector.ensure is not None
    assert _runs("projector")
    assert not _runs("tally")


def test_the_reminders_service_is_registered_with_its_own_metrics_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reminders = registry.by_name("reminders")
    assert (reminders.metrics_port, reminders.metrics_setting) == (
        9465,
        "reminders_metrics_port",
    )
    assert _runs("reminders")
    monkeypatch.delenv("CW_METRICS_PORT", raising=False)
    monkeypatch.delenv("CW_REMINDERS_METRICS_PORT", raising=False)
    assert registry.service_settings(reminders, Settings()).metrics_port == 9465
    monkeypatch.setenv("CW_METRICS_PORT", "9999")  # the projector's: not this service's
    assert registry.service_settings(reminders, Settings()).metrics_port == 9465
    monkeypatch.setenv("CW_REMINDERS_METRICS_PORT", "0")
    assert registry.service_settings(reminders, Settings()).metrics_port == 0
    assert registry.service_settings(registry.by_name("projector"), Settings()).metrics_port == 9999


@pytest.mark.usefixtures("second_service")
def test_a_second_service_shows_in_cw_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert _runs("projector")
    assert _runs("tally")
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    assert "projector | reminders | notifier | tally" in out
    assert "tally: fake tally (metrics port 9475, exit status 75 on Refused)" in " ".join(
        out.split()
    )


@pytest.mark.usefixtures("second_service")
def test_a_second_service_is_in_cw_devs_list() -> None:
    services = registered_services()
    assert [s.name for s in services] == ["projector", "reminders", "tally"]
    assert services[2].argv == [sys.executable, "-m", "services.cli", "run", "tally"]
    assert services[2].metrics_port == 9475


@pytest.mark.usefixtures("second_service")
def test_cw_run_runs_the_service_on_its_own_metrics_port(monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["run", "tally"]) == 0
    assert [s.metrics_port for s in ran] == [9475]
    monkeypatch.setenv("CW_METRICS_PORT", "0")  # the setting wins
    assert main(["run", "tally"]) == 0
    assert ran[-1].metrics_port == 0


@pytest.mark.usefixtures("second_service")
def test_a_registered_error_gives_its_exit_status(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CW_CAMPAIGN_FILE", "refuse.toml")
    assert main(["run", "tally"]) == 75


def test_a_taken_metrics_port_names_the_setting() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        settings = Settings(metrics_port=port)
        with pytest.raises(MetricsPortTaken, match=f"127.0.0.1:{port} is taken.*CW_METRICS_PORT"):
            start_metrics_server(settings, CollectorRegistry(), "projector")


def test_metrics_ports_default_configured_and_off() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    two = [DevService("a", ["a"], free), DevService("b", ["b"], 0)]
    assert [p.port for p in metrics_ports(two, None)] == [free, 0]  # b: no metrics
    assert [p.port for p in metrics_ports(two, 0)] == [0, 0]


def test_a_taken_metrics_port_is_replaced_by_a_free_one() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        services = [DevService("a", ["a"], taken), DevService("b", ["b"], taken)]
        chosen = metrics_ports(services, None)
        assert [p.taken for p in chosen] == [taken, taken]
        ports = [p.port for p in chosen]
        assert taken not in ports
        assert len(set(ports)) == 2
        configured = metrics_ports(services, taken)  # CW_METRICS_PORT: the base
        assert configured[0].taken == taken
        assert configured[0].port != taken


def test_the_notifier_runs_in_cw_dev_only_with_a_notify_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CW_NOTIFY_FILE", raising=False)
    monkeypatch.delenv("CW_NOTIFIER_METRICS_PORT", raising=False)
    assert [s.name for s in registered_services()] == ["projector", "reminders"]
    assert _runs("notifier")  # cw run says what is missing itself
    monkeypatch.setenv("CW_NOTIFY_FILE", "notify.toml")
    (projector, reminders, notifier) = registered_services()
    assert (notifier.name, notifier.metrics_port) == ("notifier", 9466)
    assert (projector.metrics_env, reminders.metrics_env, notifier.metrics_env) == (
        "CW_METRICS_PORT", "CW_REMINDERS_METRICS_PORT", "CW_NOTIFIER_METRICS_PORT"
    )  # fmt: skip
    monkeypatch.setenv("CW_NOTIFIER_METRICS_PORT", "0")
    assert registered_services()[2].metrics_port == 0


def test_the_notifier_has_its_own_metrics_port_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    notifier = registry.by_name("notifier")
    monkeypatch.setenv("CW_METRICS_PORT", "9999")  # the projector's: not the notifier's
    monkeypatch.delenv("CW_NOTIFIER_METRICS_PORT", raising=False)
    assert registry.service_settings(notifier, Settings()).metrics_port == 9466
    monkeypatch.setenv("CW_NOTIFIER_METRICS_PORT", "0")
    assert registry.service_settings(notifier, Settings()).metrics_port == 0
    assert registry.service_settings(registry.by_name("projector"), Settings()).metrics_port == (
        9999
    )
