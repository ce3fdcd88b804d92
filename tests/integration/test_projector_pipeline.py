"""The projector end to end against the run's NATS and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from functools import partial
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from services.common.campaign import Campaign
from services.common.deadletters import DeadLetter
from services.common.settings import Settings
from services.common.streams import DEAD_LETTERS_STREAM
from services.consumer.jetstream import EventSource
from services.projector.adapters.metrics import ProjectorMetrics
from services.projector.bootstrap import build_projector, projector_parts, venue_as_of
from services.projector.domain.model import Prepared
from services.projector.runner import Projector, decode_delivery
from tests import factories as f
from tests.integration.conftest import Harness, audits_clean, wait_for_checkpoint
from tests.support.nothing_lost import counter
from tests.support.tcp_proxy import FaultyProxy
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration
V = "LY-FM-007"


async def test_summary_counts_issues_in_the_phase_they_were_found(harness: Harness) -> None:
    await harness.publish([
        f.venue(V, f.at("2023-02-01 09:00"), kind="farmers_market"),
        f.inspection(V, f.at("2023-02-10 10:00")),                        # self_check
        f.issue(V, "I1", f.at("2023-02-10 10:05")),                       # self_check
        f.inspection(V, f.at("2023-03-15 10:00")),                        # re_review
        f.recheck_passed(V, "I1", f.at("2023-03-15 10:30")),              # closes I1 (self_check)
        f.issue(V, "I2", f.at("2023-03-15 10:40")),                       # re_review, rebound
        f.due(V, "I2", f.at("2023-03-15 11:00"), f.at("2023-03-20 18:00")),  # overdue by now
        f.issue(V, "I3", f.at("2023-03-16 10:00"), phase="long_term"),    # explicit phase wins
    ])  # fmt: skip
    await harness.project()
    rows = {r["phase"]: r for r in await harness.rows("SELECT * FROM venue_phase_summary")}
    assert set(rows) == {"self_check", "re_review", "long_term"}
    sc, rr, lt = rows["self_check"], rows["re_review"], rows["long_term"]
    assert (sc["inspections"], sc["issues_found"], sc["issues_closed"], sc["issues_open"]) == (
        1, 1, 1, 0,
    )  # fmt: skip
    assert (rr["inspections"], rr["issues_found"], rr["issues_open"], rr["issues_overdue"]) == (
        1, 1, 1, 1,
    )  # fmt: skip
    assert (rr["rebounds"], rr["venue_kind"]) == (1, "farmers_market")
    assert (lt["issues_found"], lt["issues_open"], lt["issues_overdue"]) == (1, 1, 0)
    status = {r["issue_id"]: r["status"] for r in await harness.rows("SELECT * FROM issue_status")}
    assert status == {"I1": "closed", "I2": "overdue", "I3": "open"}
    phase = await harness.rows(
        "SELECT * FROM phase_summary WHERE phase = 're_review' AND venue_kind = 'farmers_market'"
    )
    assert phase[0]["venues_inspected"] == 1 and phase[0]["issues_overdue"] == 1
    venues = await harness.rows("SELECT * FROM venues")
    assert venues[0]["first_responsible_name"] == "王建国"


async def test_bad_messages_go_to_the_dead_letter_stream_and_the_rest_applies(
    harness: Harness,
) -> None:
    good = f.issue(V, "I1", f.at("2023-03-01 10:00"))
    naive = f.wire(f.issue(V, "I2", f.at("2023-03-01 10:00"))).replace(b"+08:00", b"")
    wrong_venue = f.issue("SOMEWHERE-ELSE", "I3", f.at("2023-03-01 10:00"))
    subject = f"cw.events.{f.DISTRICT}.{V}.IssueFound"
    await harness.publish_raw(subject, b"{not json")
    await harness.publish_raw(f"cw.events.{f.DISTRICT}.{V}.Gossip", b'{"event_type": "Gossip"}')
    await harness.publish_raw(subject, naive)
    await harness.publish_raw(subject, f.wire(wrong_venue))
    await harness.publish([good])
    metrics = ProjectorMetrics()
    last = await harness.project(metrics)

    js = harness.nc.jetstream()
    info = await js.stream_info(DEAD_LETTERS_STREAM)
    assert info.state.messages == 4
    letters = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        m = await js.get_msg(DEAD_LETTERS_STREAM, seq)
        letters.append(DeadLetter.from_message(seq, m.subject or "", m.data or b"", m.headers))
    assert [d.original_stream_seq for d in letters] == [1, 2, 3, 4]
    assert letters[0].payload == b"{not json" and "malformed JSON" in letters[0].reason
    assert letters[1].field == "event_type"
    assert letters[2].field == "occurred_at" and "offset" in letters[2].reason
    assert "does not match" in letters[3].reason
    assert all(d.subject == "cw.dlq.projector" for d in letters)
    assert letters[2].original_subject == subject
    assert [r["issue_id"] for r in await harness.rows("SELECT * FROM issue_status")] == ["I1"]
    assert metrics.registry.get_sample_value("cw_projector_checkpoint_seq") == last
    kinds = ("malformed_json", "unknown_event_type", "invalid_field", "subject_mismatch")
    dead_lettered = {k: counter(metrics, "cw_projector_dead_letters", reason=k) for k in kinds}
    assert dead_lettered == dict.fromkeys(kinds, 1)
    await audits_clean(harness.settings)


async def test_events_without_msg_id_long_after_the_window_change_nothing(
    harness: Harness,
) -> None:
    # Without a Nats-Msg-Id, JetStream stores the same event twice; the projector must not
    # count it twice (the same as a republish long after the duplicate window).
    events = [
        f.issue(V, "I1", f.at("2023-03-01 10:00")),
        f.recheck_failed(V, "I1", f.at("2023-03-02 10:00")),
    ]
    await harness.publish(events, msg_id=False)
    await harness.project()
    await harness.publish(events, msg_id=False)
    await harness.project()
    assert await harness.last_seq() == 4
    rows = await harness.rows("SELECT recheck_failures FROM issue_status")
    assert rows == [{"recheck_failures": 1}]
    assert (await harness.rows("SELECT count(*) AS n FROM event_archive"))[0]["n"] == 2
    await audits_clean(harness.settings)


def with_source(
    source: type[EventSource[Prepared]],
    settings: Settings,
    parts: tuple[Client, asyncpg.Pool, Campaign],
    metrics: ProjectorMetrics,
    *,
    batch: int,
    ack_wait_s: float,
) -> Projector:
    """The real projector, reading through a stand-in for its JetStream source."""
    nc, pool, campaign = parts
    projector = build_projector(settings, nc, pool, campaign, metrics)
    projector.source = source(
        nc,
        settings.projector_durable,
        partial(decode_delivery, campaign=campaign),
        batch=batch,
        ack_wait_s=ack_wait_s,
    )
    return projector


class _LosesFirstAck(EventSource[Prepared]):
    """Commits its first batch, but that batch's ack never reaches the server."""

    lost = False

    async def ack_taken(self) -> None:
        if not self.lost:
            self.lost = True
            return
        await super().ack_taken()


async def test_a_redelivery_after_commit_without_ack_changes_nothing(harness: Harness) -> None:
    settings = harness.settings.model_copy(update={"projector_ack_wait": timedelta(seconds=1)})
    await harness.publish([
        f.issue(V, "I1", f.at("2023-03-01 10:00")),
        f.recheck_failed(V, "I1", f.at("2023-03-02 10:00")),
        f.inspection(V, f.at("2023-03-02 10:00")),
    ])  # fmt: skip
    target = await harness.last_seq()
    metrics = ProjectorMetrics()
    async with projector_parts(settings) as parts:
        projector = with_source(_LosesFirstAck, settings, parts, metrics, batch=100, ack_wait_s=1)
        nc = parts[0]
        task = asyncio.create_task(projector.run())
        await wait_for_checkpoint(projector, target, 30, task)
        # The server sends the batch again after ack_wait; the projector must skip it.
        await until_counted(metrics, task, "cw_projector_duplicates", 3, kind="redelivery")
        projector.stopping.set()
        await task
        info = await nc.jetstream().consumer_info("CW_EVENTS", settings.projector_durable)
        assert info.num_ack_pending == 0
    rows = await harness.rows("SELECT recheck_failures FROM issue_status")
    assert rows == [{"recheck_failures": 1}]
    summary = await harness.rows("SELECT inspections, issues_found FROM venue_phase_summary")
    assert summary == [{"inspections": 1, "issues_found": 1}]
    await audits_clean(harness.settings)


class _NeverAcks(EventSource[Prepared]):
    async def ack_taken(self) -> None:
        return None


async def test_a_restart_after_a_crash_resumes_at_the_checkpoint_at_once(
    harness: Harness,
) -> None:
    # Unacknowledged messages would come back only after ack_wait (an hour here); a restarted
    # projector recreates its consumer at the database checkpoint instead of waiting for them.
    await harness.publish([f.issue(V, f"I{i}", f.at("2023-03-01 10:00")) for i in range(5)])
    settings = harness.settings.model_copy(update={"projector_ack_wait": timedelta(hours=1)})
    harness.settings = settings
    async with projector_parts(settings) as parts:
        projector = with_source(
            _NeverAcks, settings, parts, ProjectorMetrics(), batch=10, ack_wait_s=3600
        )
        task = asyncio.create_task(projector.run())
        await wait_for_checkpoint(projector, await harness.last_seq(), 30, task)
        projector.stopping.set()
        await task
    js = harness.nc.jetstream()
    before = await js.consumer_info("CW_EVENTS", settings.projector_durable)
    assert before.num_ack_pending == 5
    await harness.publish([f.issue(V, f"J{i}", f.at("2023-03-01 10:00")) for i in range(5)])
    await harness.project(within=30)
    after = await js.consumer_info("CW_EVENTS", settings.projector_durable)
    assert after.created != before.created
    assert (await harness.rows("SELECT count(*) AS n FROM issue_status"))[0]["n"] == 10
    assert after.num_ack_pending == 0
    await audits_clean(harness.settings)


async def until_counted(
    metrics: ProjectorMetrics, task: asyncio.Task[None], name: str, at_least: float, **labels: str
) -> None:
    """Wait (30 s at most) until counter ``name`` reaches ``at_least``, the projector running."""

    async def reached() -> bool:
        return counter(metrics, name, **labels) >= at_least

    await eventually(reached, within=30, what=f"{name}{labels} reaches {at_least}", running=[task])


async def test_a_postgres_outage_in_the_middle_of_a_backlog_loses_nothing(
    harness: Harness,
) -> None:
    n_issues = 1500
    events = []
    for i in range(n_issues):
        venue = f"V{i % 37}"
        events.append(f.issue(venue, f"I{i}", f.at("2023-03-01 10:00") + timedelta(minutes=i)))
        if i % 3 == 0:
            events.append(f.recheck_passed(venue, f"I{i}", f.at("2023-03-20 10:00")))
    await harness.publish(events)
    target = await harness.last_seq()

    url = urlsplit(harness.settings.database_url)
    proxy = FaultyProxy(url.hostname or "127.0.0.1", url.port or 5432)
    await proxy.start()
    via_proxy = urlunsplit(
        url._replace(netloc=f"{url.username or 'postgres'}@127.0.0.1:{proxy.port}")
    )
    settings = harness.settings.model_copy(
        update={"database_url": via_proxy, "projector_batch": 50}
    )
    metrics = ProjectorMetrics()
    try:
        async with projector_parts(settings) as (nc, pool, campaign):
            projector = build_projector(settings, nc, pool, campaign, metrics)
            task = asyncio.create_task(projector.run())
            await wait_for_checkpoint(projector, 200, 30, task)
            await proxy.cut()
            await until_counted(metrics, task, "cw_projector_retries", 3, stage="database")
            await proxy.restore()
            await wait_for_checkpoint(projector, target, 60, task)
            projector.stopping.set()
            await task
    finally:
        await proxy.stop()
    counts = (await harness.rows(
        "SELECT count(*) AS issues, count(closed_at) AS closed FROM issue_status"
    ))[0]  # fmt: skip
    assert counts == {"issues": n_issues, "closed": len(range(0, n_issues, 3))}
    archived = await harness.rows("SELECT count(*) AS n FROM event_archive")
    assert archived[0]["n"] == len(events)
    found = await harness.rows("SELECT sum(issues_found) AS n FROM venue_phase_summary")
    assert found[0]["n"] == n_issues
    await audits_clean(harness.settings)


async def test_a_venue_as_it_stood_at_a_past_moment(harness: Harness) -> None:
    await harness.publish([
        f.issue(V, "I1", f.at("2023-03-01 10:00")),
        f.due(V, "I1", f.at("2023-03-01 11:00"), f.at("2023-03-10 18:00")),
        f.recheck_passed(V, "I1", f.at("2023-03-12 10:00")),
        f.issue(V, "I2", f.at("2023-03-20 10:00")),
    ])  # fmt: skip
    await harness.project()

    async def statuses(moment: str) -> dict[str, str]:
        (venue,) = await venue_as_of(harness.settings, V, f.at(moment))
        return {issue.issue_id: status for issue, status in venue.issues}

    assert await statuses("2023-02-28 00:00") == {}
    assert await statuses("2023-03-01 10:30") == {"I1": "open"}
    assert await statuses("2023-03-05 00:00") == {"I1": "rectifying"}
    assert await statuses("2023-03-11 00:00") == {"I1": "overdue"}
    assert await statuses("2023-03-21 00:00") == {"I1": "closed", "I2": "open"}


class _LosesADelivery(EventSource[Prepared]):
    """The seventh delivery never reaches the client, as when a connection drops mid-stream."""

    seen = 0

    def _on_message(self, session: int, msg: Msg) -> None:
        if msg.reply.startswith("$JS.ACK."):
            self.seen += 1
            if self.seen == 7:
                return
        super()._on_message(session, msg)


async def test_a_delivery_lost_in_transit_ends_the_batch_and_comes_again(
    harness: Harness,
) -> None:
    # AckAll would cover a hole: the delivery sequence shows it, the batch stops before it and
    # the consumer starts again at the checkpoint.
    await harness.publish([f.issue(V, f"I{i}", f.at("2023-03-01 10:00")) for i in range(20)])
    metrics = ProjectorMetrics()
    async with projector_parts(harness.settings) as parts:
        projector = with_source(
            _LosesADelivery, harness.settings, parts, metrics, batch=100, ack_wait_s=60
        )
        task = asyncio.create_task(projector.run())
        await wait_for_checkpoint(projector, await harness.last_seq(), 30, task)
        projector.stopping.set()
        await task
    archived = await harness.rows("SELECT stream_seq FROM event_archive ORDER BY stream_seq")
    assert [r["stream_seq"] for r in archived] == list(range(1, 21))
    assert counter(metrics, "cw_projector_consumer_restarts", reason="gap") == 1
    await audits_clean(harness.settings)
