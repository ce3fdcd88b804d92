"""Regression tests: every event published to ``CW_EVENTS`` ends up in the archive, or in the dead
letters, whatever the server does to the projector's subscription.

Each test runs the real projector (``run_projector``, what ``cw run projector`` runs) against the
run's nats-server (default limits: ``max_pending`` 64 MiB) and PostgreSQL, waits for the
checkpoint to reach the stream's last sequence (or a deadline), and then compares what is in
``public.event_archive`` and ``CW_DEAD_LETTERS`` with what was published.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlsplit

import pytest
from nats.js.errors import APIError

from services.common.deadletters import TRUNCATED
from services.common.streams import EVENTS_STREAM
from services.projector.adapters.metrics import ProjectorMetrics
from services.projector.bootstrap import build_projector, projector_parts
from tests import factories as f
from tests.integration.conftest import Harness, audits_clean, wait_for_checkpoint
from tests.support.nothing_lost import (
    Checkpoint,
    archived,
    big_issue,
    counter,
    dead_letters,
    last_seq,
    projector_in_process,
    publish_pipelined,
)
from tests.support.tcp_proxy import FaultyProxy
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration
V = "LY-FM-007"
SUBJECT = f"cw.events.{f.DISTRICT}.{V}.IssueFound"


async def _backlog_is_projected_whole(harness: Harness, n: int, evidence: int) -> None:
    events = [big_issue(i, evidence=evidence) for i in range(n)]
    target = await publish_pipelined(harness.nc, events)
    assert target == n
    async with (
        Checkpoint.of(harness.settings.database_url) as checkpoint,
        projector_in_process(harness.settings) as projector,
    ):
        reached = await checkpoint.reaches(target, within=90, running=[projector])
    found = await archived(harness.db)
    assert found.rows == n, (
        f"{n - found.rows} of {n} events never reached the archive (checkpoint {reached} of "
        f"{target})"
    )
    assert found.distinct_event_ids == n
    assert reached == target
    assert await dead_letters(harness.nc) == [], "valid events were dead-lettered"
    await audits_clean(harness.settings)


async def test_a_backlog_of_6kb_events_is_projected_whole(harness: Harness) -> None:
    """30,000 events of ~6.3 KB: two batches requested at once are ~100 MB, more than the
    server's max_pending (64 MiB) for a client that reads slower than it sends."""
    await _backlog_is_projected_whole(harness, 30_000, evidence=0)


async def test_a_backlog_of_44kb_events_is_projected_whole(harness: Harness) -> None:
    """4,000 events of ~44 KB (50 evidence references each): ~175 MB when all are requested."""
    await _backlog_is_projected_whole(harness, 4_000, evidence=50)


async def test_an_event_message_that_looks_like_a_pull_status_is_dead_lettered(
    harness: Harness,
) -> None:
    """An empty message with a ``Status`` header, published on an event subject, is a message of
    the stream like any other (it has a sequence): it is bad input, not a pull status."""
    js = harness.nc.jetstream()
    await harness.publish([f.issue(V, "I1", f.at("2023-03-01 10:00"))])
    fake_timeout = (await js.publish(SUBJECT, b"", headers={"Status": "408"})).seq
    fake_conflict = (
        await js.publish(SUBJECT, b"", headers={"Status": "409", "Nats-Pending-Messages": "5"})
    ).seq
    later = [f.issue(V, f"I{i}", f.at("2023-03-01 11:00")) for i in range(2, 6)]
    await harness.publish(later)
    target = await last_seq(harness.nc)
    async with (
        Checkpoint.of(harness.settings.database_url) as checkpoint,
        projector_in_process(harness.settings) as projector,
    ):
        reached = await checkpoint.reaches(target, within=30, running=[projector])
    letters = await dead_letters(harness.nc)
    assert sorted(d.original_stream_seq or 0 for d in letters) == [fake_timeout, fake_conflict], (
        f"dead letters for stream sequences {[d.original_stream_seq for d in letters]}, "
        f"expected {[fake_timeout, fake_conflict]}"
    )
    assert all(d.original_subject == SUBJECT for d in letters)
    assert (await archived(harness.db)).rows == 1 + len(later)
    assert reached == target
    await audits_clean(harness.settings)


async def test_a_deleted_consumer_is_recreated_at_the_checkpoint(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """An operator (or a mistake) deletes the projector's durable consumer while it runs."""
    js = harness.nc.jetstream()
    metrics = ProjectorMetrics()
    first = [f.issue(V, f"I{i}", f.at("2023-03-01 10:00")) for i in range(3)]
    then = [f.issue(V, f"J{i}", f.at("2023-03-02 10:00")) for i in range(5)]
    async with (
        Checkpoint.of(harness.settings.database_url) as checkpoint,
        projector_in_process(harness.settings, metrics) as projector,
    ):
        await harness.publish(first)
        assert await checkpoint.reaches(len(first), within=30, running=[projector]) == len(first)
        caplog.clear()
        await js.delete_consumer(EVENTS_STREAM, harness.settings.projector_durable)
        await harness.publish(then)
        target = await last_seq(harness.nc)
        reached = await checkpoint.reaches(target, within=30, running=[projector])
    found = await archived(harness.db)
    assert found.rows == len(first) + len(then), (
        f"{len(first) + len(then) - found.rows} events published after the consumer was deleted "
        f"were not projected in 30 s (checkpoint {reached} of {target})"
    )
    assert reached == target
    ours = [
        r for r in caplog.records if r.levelno >= logging.ERROR and not r.name.startswith("nats")
    ]
    assert ours, "the projector recreated its consumer without an ERROR log line"
    restarts = counter(metrics, "cw_projector_consumer_restarts", reason="consumer_missing")
    assert restarts >= 1
    await audits_clean(harness.settings)


async def test_a_message_as_large_as_the_stream_allows_is_dead_lettered(harness: Harness) -> None:
    """The dead letter of the largest message ``CW_EVENTS`` accepts must fit in a NATS message
    too (its ``Cw-Dlq-*`` headers come on top of the original bytes)."""
    js = harness.nc.jetstream()
    info = await js.stream_info(EVENTS_STREAM)
    max_msg_size = int(info.config.max_msg_size or 0)
    assert max_msg_size > 0
    size = min(max_msg_size, harness.nc.max_payload)
    for _ in range(200):  # the largest message the stream takes (no headers)
        pad = b"x" * (size - len(b'{"pad":""}'))
        try:
            big_seq = (await js.publish(SUBJECT, b'{"pad":"' + pad + b'"}')).seq
            break
        except APIError:
            size -= 64
    else:
        raise AssertionError(f"CW_EVENTS took no message of {size} bytes or more")
    later = [f.issue(V, f"I{i}", f.at("2023-03-01 11:00")) for i in range(3)]
    await harness.publish(later)
    target = await last_seq(harness.nc)
    async with (
        Checkpoint.of(harness.settings.database_url) as checkpoint,
        projector_in_process(harness.settings) as projector,
    ):
        reached = await checkpoint.reaches(target, within=30, running=[projector])
    letters = await dead_letters(harness.nc)
    assert [d.original_stream_seq for d in letters] == [big_seq], (
        f"no dead letter for the {size}-byte message at sequence {big_seq} (checkpoint {reached} "
        f"of {target})"
    )
    letter = letters[0]
    assert letter.original_subject == SUBJECT
    if TRUNCATED in letter.headers:
        assert letter.payload == (b'{"pad":"' + pad)[: len(letter.payload)]
    else:
        assert len(letter.payload) == size
    assert (await archived(harness.db)).rows == len(later)
    assert reached == target
    await audits_clean(harness.settings)


async def test_a_connection_closed_for_good_is_opened_again(harness: Harness) -> None:
    """nats-py reconnects after a network fault, but not after the connection was closed (as the
    server does on a protocol error): the projector opens a new one and restarts at the
    checkpoint."""
    metrics = ProjectorMetrics()
    first = [f.issue(V, f"I{i}", f.at("2023-03-01 10:00")) for i in range(3)]
    then = [f.issue(V, f"J{i}", f.at("2023-03-02 10:00")) for i in range(5)]
    async with projector_parts(harness.settings) as (nc, pool, campaign):
        projector = build_projector(harness.settings, nc, pool, campaign, metrics)
        task = asyncio.create_task(projector.run())
        await harness.publish(first)
        await wait_for_checkpoint(projector, len(first), 30, task)
        await nc.close()
        await harness.publish(then)
        await wait_for_checkpoint(projector, len(first) + len(then), 30, task)
        projector.stopping.set()
        await asyncio.wait_for(task, 30)
    assert (await archived(harness.db)).rows == len(first) + len(then)
    assert counter(metrics, "cw_projector_consumer_restarts", reason="connection_closed") == 1
    await audits_clean(harness.settings)


async def test_a_reconnect_mid_backlog_restarts_at_the_checkpoint(harness: Harness) -> None:
    """Deliveries in flight when the connection drops are lost in transit; the projector must
    not let a later ack cover them."""
    # 6.3 KB events: the pull budget (16 MiB) holds about 2,500, so the backlog cannot all be
    # in the client's buffer when the connection drops.
    n = 6_000
    events = [big_issue(i, evidence=0) for i in range(n)]
    assert await publish_pipelined(harness.nc, events) == n
    url = urlsplit(harness.settings.nats_url)
    proxy = FaultyProxy(url.hostname or "127.0.0.1", url.port or 4222)
    await proxy.start()
    settings = harness.settings.model_copy(
        update={"nats_url": f"nats://127.0.0.1:{proxy.port}", "projector_batch": 200}
    )
    metrics = ProjectorMetrics()
    try:
        async with projector_parts(settings) as (nc, pool, campaign):
            projector = build_projector(settings, nc, pool, campaign, metrics)
            task = asyncio.create_task(projector.run())
            await wait_for_checkpoint(projector, 1_000, 30, task)
            await proxy.cut()

            async def disconnected() -> bool:
                return not nc.is_connected

            await eventually(
                disconnected, within=30, what="the client sees the cut", running=[task]
            )
            await proxy.restore()
            await wait_for_checkpoint(projector, n, 60, task)
            projector.stopping.set()
            await asyncio.wait_for(task, 30)
    finally:
        await proxy.stop()
    found = await archived(harness.db)
    assert (found.rows, found.distinct_event_ids) == (n, n)
    # Whichever it noticed first: the reconnect itself, or the hole it left in the deliveries.
    restarts = sum(
        counter(metrics, "cw_projector_consumer_restarts", reason=reason)
        for reason in ("reconnect", "gap")
    )
    assert restarts >= 1
    await audits_clean(harness.settings)
