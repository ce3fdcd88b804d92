"""``cw audit`` and the projector's periodic audit as real processes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import urllib.request
from pathlib import Path

import asyncpg
import pytest

from services.devstack.system import free_port
from tests.support.processes import EXAMPLES, ProjectorProcess, cw
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e


def metric(port: str, name: str) -> float | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            body: bytes = response.read()
    except OSError:
        return None  # not listening yet
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


async def test_an_audited_projector_and_cw_audit_find_a_loss(
    nats_url: str, database_url: str, tmp_path: Path
) -> None:
    port = str(free_port())
    env = {
        **os.environ,
        "CW_NATS_URL": nats_url,
        "CW_DATABASE_URL": database_url,
        "CW_METRICS_PORT": port,
        "CW_PROJECTOR_FETCH_WAIT": "200ms",
        "CW_AUDIT_EVERY": "200ms",
    }
    assert cw(env, "init").returncode == 0
    published = cw(env, "publish", str(EXAMPLES))
    assert published.returncode == 0, published.stdout + published.stderr
    total = sum(1 for line in EXAMPLES.read_text(encoding="utf-8").splitlines() if line.strip())

    projector = ProjectorProcess(env, tmp_path / "projector.log")
    projector.start()
    proc = projector.proc
    assert proc is not None
    try:
        checked = None

        async def audited_all() -> bool:
            nonlocal checked
            assert proc.poll() is None, (tmp_path / "projector.log").read_text()
            checked = await asyncio.to_thread(
                metric, port, "cw_projector_audit_checked_through_seq"
            )
            return checked == total

        await eventually(
            audited_all, within=60, what=lambda: f"periodic audit reached {checked}, not {total}"
        )
        assert await asyncio.to_thread(metric, port, "cw_projector_unaccounted_events") == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0

    clean = cw(env, "audit")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert f"CW_EVENTS 1..{total}" in clean.stdout
    assert f"{total} messages checked" in clean.stdout
    assert "every message is accounted for" in clean.stdout

    db = await asyncpg.connect(database_url)
    try:
        subjects = await db.fetch(
            "SELECT stream_seq, subject FROM event_archive WHERE stream_seq IN (10, 11, 12) "
            "ORDER BY stream_seq"
        )
        schema = await db.fetchval("SELECT active_schema FROM cw.read_model_head")
        await db.execute(f"DELETE FROM {schema}.event_archive WHERE stream_seq IN (10, 11, 12)")
    finally:
        await db.close()

    lost = cw(env, "audit")
    assert lost.returncode == 1, lost.stdout + lost.stderr
    assert "UNACCOUNTED FOR: 3 messages" in lost.stdout
    assert "seq 10-12 (3): not in the archive and no outcome recorded" in lost.stdout
    assert subjects[0]["subject"] in lost.stdout

    as_json = cw(env, "audit", "--json", "--since", "11")
    assert as_json.returncode == 1
    report = json.loads(as_json.stdout)
    assert [(u["seq"], u["subject"]) for u in report["unaccounted"]] == [
        (r["stream_seq"], r["subject"]) for r in subjects[1:]
    ]
