"""Who may do what, as a real nats-server enforces it with ``cw dev --secure``'s permissions
(``services/permissions/domain/users.py``): each attempt is made with nats-py, and the server's
refusal, or the stream's unchanged state, is what is checked."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import nats
import nats.errors
import orjson
import pytest
from nats.js.api import ConsumerConfig, StreamConfig

from contracts import encode_event
from contracts.wire import DEAD_LETTERS_STREAM, EVENTS_STREAM, MSG_ID
from services.common.streams import ensure_streams, stream_plans
from services.permissions.domain.users import inbox_prefix
from tests import factories as f
from tests.support.secure_nats import DISTRICT, SecuredServer, Watched, secured_server, watched

pytestmark = pytest.mark.integration

OTHER = "110101"


@pytest.fixture(scope="module")
def secured() -> Iterator[SecuredServer]:
    with secured_server() as server:
        yield server


@pytest.fixture
async def operator(secured: SecuredServer) -> AsyncIterator[Watched]:
    async with watched(secured.url("operator")) as w:
        js = w.nc.jetstream()
        for info in await js.streams_info():
            await js.delete_stream(info.config.name or "")
        await ensure_streams(js, stream_plans())
        yield w


@pytest.fixture
async def publisher(secured: SecuredServer, operator: Watched) -> AsyncIterator[Watched]:
    async with watched(secured.url("publisher"), inbox_prefix=inbox_prefix(DISTRICT)) as w:
        yield w


def _event(district: str = DISTRICT) -> tuple[str, bytes, dict[str, str]]:
    ev = f.issue("LY-FM-001", "I-1", f.at("2023-03-15 10:00"))
    ev = ev.model_copy(update={"district": district})
    return ev.subject, encode_event(ev), {MSG_ID: str(ev.event_id)}


async def _messages(operator: Watched, stream: str) -> int:
    info = await operator.nc.jetstream().stream_info(stream)
    return int(info.state.messages)


async def test_no_one_gets_in_without_credentials(secured: SecuredServer) -> None:
    with pytest.raises(nats.errors.Error) as refused:
        await nats.connect(secured.server_url, max_reconnect_attempts=0, allow_reconnect=False)
    assert "authorization violation" in str(refused.value).lower()


async def test_a_publisher_publishes_its_own_district_with_an_acknowledgement(
    publisher: Watched, operator: Watched
) -> None:
    subject, payload, headers = _event()
    ack = await publisher.nc.jetstream().publish(subject, payload, headers=headers)
    assert ack.stream == EVENTS_STREAM
    assert await _messages(operator, EVENTS_STREAM) == 1
    dead = await publisher.nc.jetstream().publish(f"cw.dlq.intake.{DISTRICT}", b"{}")
    assert dead.stream == DEAD_LETTERS_STREAM
    assert publisher.refusals() == []


async def test_a_publisher_is_refused_another_district(
    publisher: Watched, operator: Watched
) -> None:
    subject, payload, headers = _event(OTHER)
    js = publisher.nc.jetstream()
    said = await publisher.refused(js.publish(subject, payload, headers=headers), subject=subject)
    assert "publish" in said.lower()
    assert await _messages(operator, EVENTS_STREAM) == 0


async def test_a_publisher_cannot_forge_dead_letters(publisher: Watched, operator: Watched) -> None:
    js = publisher.nc.jetstream()
    for subject in ("cw.dlq.projector", "cw.dlq.notifier", f"cw.dlq.intake.{OTHER}"):
        await publisher.refused(js.publish(subject, b"{}"), subject=subject)
    assert await _messages(operator, DEAD_LETTERS_STREAM) == 0


async def test_a_publisher_cannot_delete_purge_or_manage_streams_and_consumers(
    publisher: Watched, operator: Watched
) -> None:
    subject, payload, headers = _event()
    await publisher.nc.jetstream().publish(subject, payload, headers=headers)
    nc, js = publisher.nc, publisher.nc.jetstream()
    api = "$JS.API"
    attempts = {
        f"{api}.STREAM.MSG.DELETE.{EVENTS_STREAM}": js.delete_msg(EVENTS_STREAM, 1),
        f"{api}.STREAM.PURGE.{EVENTS_STREAM}": js.purge_stream(EVENTS_STREAM),
        f"{api}.STREAM.DELETE.{EVENTS_STREAM}": js.delete_stream(EVENTS_STREAM),
        f"{api}.STREAM.UPDATE.{EVENTS_STREAM}": js.update_stream(
            StreamConfig(name=EVENTS_STREAM, subjects=["cw.events.>"], max_msgs=1)
        ),
        f"{api}.STREAM.CREATE.MINE": js.add_stream(StreamConfig(name="MINE", subjects=["x.>"])),
        f"{api}.STREAM.INFO.{EVENTS_STREAM}": js.stream_info(EVENTS_STREAM),
        f"{api}.STREAM.MSG.GET.{EVENTS_STREAM}": js.get_msg(EVENTS_STREAM, 1),
        f"{api}.CONSUMER.CREATE.{EVENTS_STREAM}": js.add_consumer(EVENTS_STREAM, ConsumerConfig()),
        f"{api}.CONSUMER.DELETE.{EVENTS_STREAM}.projector": js.delete_consumer(
            EVENTS_STREAM, "projector"
        ),
        # Pulling from another's consumer, raw: the reply would come to our own inbox.
        f"{api}.CONSUMER.MSG.NEXT.{EVENTS_STREAM}.projector": nc.publish(
            f"{api}.CONSUMER.MSG.NEXT.{EVENTS_STREAM}.projector",
            orjson.dumps({"batch": 1}),
            reply=f"{inbox_prefix(DISTRICT)}.x",
        ),
    }
    for subject, work in attempts.items():
        await publisher.refused(work, subject=subject)
    info = await operator.nc.jetstream().stream_info(EVENTS_STREAM)
    assert (info.state.messages, info.config.max_msgs) == (1, -1)
    assert [s.config.name for s in await operator.nc.jetstream().streams_info()].count("MINE") == 0


async def test_a_publisher_cannot_read_events_or_others_replies(publisher: Watched) -> None:
    for subject in ("cw.events.>", f"cw.events.{DISTRICT}.>", "_INBOX.>", "_INBOX_projector.>"):
        await publisher.refused(publisher.nc.subscribe(subject), subject=subject)


async def test_a_publisher_without_its_inbox_prefix_gets_no_acknowledgement(
    secured: SecuredServer, operator: Watched
) -> None:
    async with watched(secured.url("publisher")) as wrong:
        subject, payload, headers = _event()
        said = await wrong.refused(
            wrong.nc.jetstream().publish(subject, payload, headers=headers), subject="_INBOX."
        )
        assert "subscription" in said.lower()


async def test_a_service_may_not_do_another_services_work(
    secured: SecuredServer, operator: Watched
) -> None:
    async with watched(secured.url("notifier"), inbox_prefix=inbox_prefix("notifier")) as w:
        js = w.nc.jetstream()
        for subject, work in {
            "cw.reminders.320703.LY-FM-001.overdue": js.publish(
                "cw.reminders.320703.LY-FM-001.overdue", b"{}"
            ),
            "cw.dlq.projector": js.publish("cw.dlq.projector", b"{}"),
            "cw.events.320703.LY-FM-001.IssueFound": js.publish(
                "cw.events.320703.LY-FM-001.IssueFound", b"{}"
            ),
            f"$JS.API.CONSUMER.CREATE.{EVENTS_STREAM}.projector": js.add_consumer(
                EVENTS_STREAM, ConsumerConfig(name="projector", durable_name="projector")
            ),
            f"$JS.API.STREAM.MSG.DELETE.{DEAD_LETTERS_STREAM}": js.delete_msg(
                DEAD_LETTERS_STREAM, 1
            ),
        }.items():
            await w.refused(work, subject=subject)
    async with watched(secured.url("projector"), inbox_prefix=inbox_prefix("projector")) as w:
        js = w.nc.jetstream()
        for subject, work in {
            "cw.reminders.320703.LY-FM-001.overdue": js.publish(
                "cw.reminders.320703.LY-FM-001.overdue", b"{}"
            ),
            f"$JS.API.STREAM.MSG.DELETE.{EVENTS_STREAM}": js.delete_msg(EVENTS_STREAM, 1),
            f"$JS.API.STREAM.PURGE.{DEAD_LETTERS_STREAM}": js.purge_stream(DEAD_LETTERS_STREAM),
            "_INBOX_notifier.>": w.nc.subscribe("_INBOX_notifier.>"),
        }.items():
            await w.refused(work, subject=subject)


async def test_the_operator_may_manage_everything(operator: Watched) -> None:
    js = operator.nc.jetstream()
    subject, payload, headers = _event(OTHER)
    ack = await js.publish(subject, payload, headers=headers)
    assert await js.delete_msg(EVENTS_STREAM, ack.seq)
    assert operator.refusals() == []
