"""``cw run``: a metrics port that is taken is said in one line naming the setting."""

from __future__ import annotations

import socket

import pytest

from tests.support.processes import cw, cw_env

pytestmark = pytest.mark.e2e


def test_a_taken_metrics_port_names_cw_metrics_port(nats_url: str, database_url: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = cw(cw_env(nats_url, database_url, metrics_port=str(port)), "run", "projector")
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1, done.stderr
    assert f"127.0.0.1:{port} is taken" in errors[0]
    assert "set CW_METRICS_PORT to a free port" in errors[0]
    assert "Traceback" not in done.stderr


def test_cw_run_lists_the_registered_services(nats_url: str, database_url: str) -> None:
    done = cw(cw_env(nats_url, database_url), "run", "nothing-of-that-name")
    assert done.returncode == 2
    assert "(choose from 'projector', 'reminders', 'notifier')" in done.stderr
