"""/healthz: ok, slow, stalled, standby, from what the loop and the watcher report."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from zoneinfo import ZoneInfo

import pytest
from prometheus_client import CollectorRegistry, Counter

from services.common.http_server import serve
from services.consumer.health import Health
from services.devstack.system import free_port

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def writer(clock: Clock) -> Health:
    health = Health(stall_after_s=60, slow_after_s=10, clock=clock)
    health.writing()
    return health


def test_a_standby_is_healthy_and_says_so() -> None:
    code, body = Health(clock=Clock()).report()
    assert (code, body["status"]) == (200, "standby")


def test_caught_up_is_ok_and_idle_never_stalls() -> None:
    clock = Clock()
    health = writer(clock)
    health.progressed(100)
    for _ in range(10):
        clock.now += 30
        health.observed(0, 0.0, {})
    code, body = health.report()
    assert (code, body["status"], body["lag_events"], body["checkpoint"]) == (200, "ok", 0, 100)


def test_behind_but_advancing_is_slow() -> None:
    clock = Clock()
    health = writer(clock)
    for seq in range(100, 1000, 100):
        clock.now += 5
        health.progressed(seq)
        health.observed(5000, 42.0, {})
    code, body = health.report()
    assert (code, body["status"]) == (200, "slow")
    assert "42s" in body["reason"]


def test_a_backlog_without_progress_for_stall_after_is_stalled() -> None:
    clock = Clock()
    health = writer(clock)
    health.progressed(100)
    health.observed(500, 3.0, {})
    clock.now += 59
    assert health.report()[1]["status"] in {"ok", "slow"}
    clock.now += 2
    health.observed(500, 64.0, {})
    code, body = health.report()
    assert (code, body["status"]) == (503, "stalled")
    assert "500 messages wait" in body["reason"]
    # It advances again: no longer stalled.
    clock.now += 1
    health.progressed(600)
    health.observed(0, 0.0, {})
    assert health.report()[:1] == (200,)


def test_a_server_out_of_reach_is_stalled_with_the_reason() -> None:
    health = writer(Clock())
    health.observed(None, None, {"PostgreSQL": "Connection refused"})
    code, body = health.report()
    assert (code, body["status"]) == (503, "stalled")
    assert body["reason"] == "cannot reach PostgreSQL: Connection refused"


def test_one_port_serves_metrics_and_healthz() -> None:
    registry = CollectorRegistry()
    Counter("cw_test_things", "things", registry=registry).inc()
    health = writer(Clock())
    port = free_port()
    server = serve("127.0.0.1", port, registry, health.report)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            assert "cw_test_things_total 1.0" in r.read().decode()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
            assert r.headers["Content-Type"] == "application/json"
            assert json.loads(r.read())["status"] == "ok"
        health.observed(None, None, {"NATS": "timed out"})
        with pytest.raises(urllib.error.HTTPError) as failed:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5)
        assert failed.value.code == 503
        assert json.loads(failed.value.read())["status"] == "stalled"
    finally:
        server.shutdown()
        server.server_close()


def test_last_progress_is_written_in_the_campaign_zone() -> None:
    health = Health(clock=Clock(), zone=ZoneInfo("Asia/Shanghai"))
    assert health.report()[1]["last_progress_at"] == "2023-11-15T06:13:20+08:00"
