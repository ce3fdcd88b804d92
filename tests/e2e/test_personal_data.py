"""Phone numbers reach the people who need them (the views, the reminders sent to those
concerned) and nowhere else: the projector, the reminders service and the notifier run as
processes on events carrying distinctive phone numbers, valid and malformed, and their logs,
``/metrics`` and ``/healthz`` are searched for them.

Dead letters are exempt: they keep the original message for the operator (``cw dlq show``), so
a rejected event's phone is there by design.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import asyncpg
import nats
import pytest

from contracts import Event
from contracts.wire import DEAD_LETTERS_STREAM
from tests import factories as f
from tests.support.notifier import notify_file
from tests.support.processes import ProjectorProcess, cw, cw_env
from tests.support.reminders import campaign_file, soon
from tests.support.robots import FakeWebhook
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e

RESPONSIBLE_PHONE = "13924681357"
OFFICER_PHONE = "13735791246"
MALFORMED_PHONE = "13811223344#"
"""Not a phone by the contract (``#``), but a person's number all the same."""
PHONES = (RESPONSIBLE_PHONE, OFFICER_PHONE, MALFORMED_PHONE.rstrip("#"))


def _venue(venue_id: str, responsible: str = RESPONSIBLE_PHONE) -> Event:
    return f.event(
        "VenueRegistered",
        venue_id,
        soon(0),
        {
            "name": "海连路农贸市场",
            "kind": "farmers_market",
            "first_responsible": {"name": "王建国", "phone": responsible},
            "officer": {"name": "李明", "phone": OFFICER_PHONE},
        },
    )


def _scrape(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            body: bytes = response.read()
    except urllib.error.HTTPError as exc:  # /healthz says 503 while a service is stalled
        body = exc.read()
    return body.decode()


def _leaks(text: str) -> list[str]:
    return [phone for phone in PHONES if phone in text]


async def test_phone_numbers_stay_out_of_logs_metrics_and_health(
    nats_url: str, database_url: str, tmp_path: Path
) -> None:
    webhook = FakeWebhook()
    await webhook.start()
    failing = FakeWebhook(answer=lambda _n, _key: 500)
    await failing.start()
    ports = {"projector": 0, "reminders": 0, "notifier": 0}
    from services.devstack.system import free_port  # noqa: PLC0415

    for name in ports:
        ports[name] = free_port()
    env = cw_env(
        nats_url,
        database_url,
        campaign_file=str(campaign_file(tmp_path)),
        notify_file=str(
            notify_file(
                tmp_path / "notify.toml",
                [
                    {"name": "sms-gateway", "kind": "webhook", "url": webhook.url},
                    {"name": "broken-gateway", "kind": "webhook", "url": failing.url},
                ],
            )
        ),
        metrics_port=str(ports["projector"]),
        reminders_metrics_port=str(ports["reminders"]),
        notifier_metrics_port=str(ports["notifier"]),
        projector_fetch_wait="200ms",
        reminders_fetch_wait="200ms",
    )
    done = cw(env, "init")
    assert done.returncode == 0, done.stderr
    processes = {
        name: ProjectorProcess(env, tmp_path / f"{name}.log", service=name) for name in ports
    }
    nc = await nats.connect(nats_url)
    try:
        for process in processes.values():
            process.start()
        js = nc.jetstream()
        good = _venue("LY-FM-001")
        await js.publish(good.subject, f.wire(good))
        found = f.issue("LY-FM-001", "I-1", soon(0))  # no order: a reminder to the venue
        await js.publish(found.subject, f.wire(found))
        # Dead letters of each kind that carries a phone: a malformed one, an unknown field,
        # and an envelope that speaks for another venue than its subject.
        bad = json.loads(f.wire(_venue("LY-FM-002")))
        bad["data"]["first_responsible"]["phone"] = MALFORMED_PHONE
        await js.publish(good.subject.replace("LY-FM-001", "LY-FM-002"), json.dumps(bad).encode())
        extra = json.loads(f.wire(_venue("LY-FM-003")))
        extra["data"]["mobile"] = RESPONSIBLE_PHONE
        await js.publish(good.subject.replace("LY-FM-001", "LY-FM-003"), json.dumps(extra).encode())
        await js.publish(good.subject.replace("LY-FM-001", "LY-FM-004"), f.wire(good))

        async def delivered() -> bool:
            exited = {n: p.tail() for n, p in processes.items() if p.proc and p.proc.poll()}
            assert not exited, exited
            dead = await js.stream_info(DEAD_LETTERS_STREAM)
            return (
                any(OFFICER_PHONE.encode() in c.body for c in webhook.calls)
                and len(failing.calls) >= 2
                and dead.state.messages >= 3
            )

        await eventually(
            delivered,
            within=60,
            what=lambda: (
                "the reminder delivered, the dead letters stored: "
                f"{[c.body for c in webhook.calls]} and {len(failing.calls)} webhook calls; "
                + "; ".join(f"{n}: {p.tail()}" for n, p in processes.items()).replace("\n", " | ")
            ),
        )

        # Where a person needs them, they are there: the view, and the reminder sent.
        db = await asyncpg.connect(database_url)
        try:
            row = await db.fetchrow(
                "SELECT first_responsible_phone, officer_phone FROM public.venues"
            )
        finally:
            await db.close()
        assert row is not None and tuple(row) == (RESPONSIBLE_PHONE, OFFICER_PHONE)

        said = {}
        for name, port in ports.items():
            base = f"http://127.0.0.1:{port}"
            said[f"{name} /metrics"] = _scrape(f"{base}/metrics")
            said[f"{name} /healthz"] = _scrape(f"{base}/healthz")
    finally:
        for process in processes.values():
            if process.proc is not None and process.proc.poll() is None:
                process.stop()
            process.ensure_gone()
        await nc.close()
        await webhook.stop()
        await failing.stop()
    for name, process in processes.items():
        said[f"{name} log"] = process.log.read_text(errors="replace")
    assert "dead letter" in said["projector log"]  # the dead letters were logged, phone-free
    assert {where: _leaks(text) for where, text in said.items() if _leaks(text)} == {}
