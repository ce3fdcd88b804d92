"""The pull loop's reading of what the server sends on its inbox, with no server.

``EventSource`` runs on a stand-in for the nats-py client that records what is published (the
pull requests); the messages are real ``nats.aio.msg.Msg`` objects, handed to the callback the
source subscribed with, as nats-py does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import cast

import orjson
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig

from services.consumer.jetstream import EventSource
from services.projector.domain.model import Delivery

pytestmark = pytest.mark.unit

PULL_BYTES = 8 * 1024 * 1024
SUBJECT = "cw.events.320703.LY-FM-007.IssueFound"
PULL_SUBJECT = "$JS.API.CONSUMER.MSG.NEXT.CW_EVENTS.projector"


class FakeNats:
    """What ``EventSource`` uses of a nats-py ``Client`` (and of its JetStream context)."""

    def __init__(self) -> None:
        self.is_closed = False
        self.stats = {"reconnects": 0}
        self.published: list[tuple[str, bytes, str]] = []
        self.inbox = ""
        self._callback: Callable[[Msg], Awaitable[None]] | None = None
        self._inboxes = 0

    def jetstream(self) -> FakeNats:
        return self

    async def add_consumer(self, stream: str, config: ConsumerConfig) -> SimpleNamespace:
        return SimpleNamespace(name=config.name)

    async def delete_consumer(self, stream: str, name: str) -> bool:
        return True

    def new_inbox(self) -> str:
        self._inboxes += 1
        return f"_INBOX.test.{self._inboxes}"

    async def subscribe(
        self, subject: str, cb: Callable[[Msg], Awaitable[None]], **limits: int
    ) -> SimpleNamespace:
        self.inbox, self._callback = subject, cb

        async def unsubscribe() -> None:
            self._callback = None

        return SimpleNamespace(unsubscribe=unsubscribe)

    async def publish(
        self, subject: str, payload: bytes = b"", reply: str = "", headers: object = None
    ) -> None:
        self.published.append((subject, payload, reply))

    def pulls(self) -> list[int]:
        """The ``max_bytes`` of each pull request sent so far (each on the current inbox)."""
        out = []
        for subject, payload, reply in self.published:
            if subject == PULL_SUBJECT:
                assert reply == self.inbox
                out.append(int(orjson.loads(payload)["max_bytes"]))
        return out

    async def deliver(self, msg: Msg) -> None:
        assert self._callback is not None, "nothing subscribed"
        await self._callback(msg)

    def status(self, code: str, description: str = "", **headers: str) -> Msg:
        """A status message of the server: on the inbox, no reply subject, no body."""
        fields = {"Status": code, **({"Description": description} if description else {})}
        return Msg(cast(Client, self), subject=self.inbox, headers={**fields, **headers}, data=b"")

    def event(
        self, seq: int, delivered: int, data: bytes = b"{}", headers: dict[str, str] | None = None
    ) -> Msg:
        """A delivery of stream sequence ``seq`` as the consumer's ``delivered``-th delivery."""
        reply = f"$JS.ACK.CW_EVENTS.projector.1.{seq}.{delivered}.1700000000000000000.0"
        return Msg(cast(Client, self), subject=SUBJECT, reply=reply, data=data, headers=headers)


async def started() -> tuple[EventSource[Delivery], FakeNats]:
    """A source bound at the start of the stream, with its first pull request sent."""
    nats = FakeNats()
    source = EventSource(
        cast(Client, nats),
        "projector",
        lambda delivery: delivery,
        batch=10,
        linger_s=0,
        pull_bytes=PULL_BYTES,
    )
    await source.start(0)
    assert await source.next_batch(0) == []
    assert nats.pulls() == [PULL_BYTES]
    return source, nats


async def test_a_heartbeat_changes_nothing() -> None:
    source, nats = await started()
    await nats.deliver(nats.status("100", "Idle Heartbeat"))
    assert await source.next_batch(0) == []
    assert nats.pulls() == [PULL_BYTES], "a heartbeat gave back bytes still requested"
    assert source.needs_restart() is None


@pytest.mark.parametrize(
    ("code", "description"),
    [("408", "Request Timeout"), ("409", "Message Size Exceeds MaxBytes")],
)
async def test_an_ended_pull_request_gives_its_bytes_back_and_a_new_one_goes_out(
    code: str, description: str
) -> None:
    source, nats = await started()
    assert await source.next_batch(0) == []
    assert nats.pulls() == [PULL_BYTES], "a second request while the first is outstanding"
    ended = nats.status(code, description, **{"Nats-Pending-Bytes": str(PULL_BYTES)})
    await nats.deliver(ended)
    assert await source.next_batch(0) == []
    assert nats.pulls() == [PULL_BYTES, PULL_BYTES]
    assert source.needs_restart() is None


async def test_an_ended_pull_request_that_left_little_sends_no_new_one_yet() -> None:
    source, nats = await started()
    left = PULL_BYTES // 4  # under the smallest request worth sending (4 MiB)
    await nats.deliver(nats.status("408", "Request Timeout", **{"Nats-Pending-Bytes": str(left)}))
    assert await source.next_batch(0) == []
    assert nats.pulls() == [PULL_BYTES]


@pytest.mark.parametrize(
    ("code", "description"), [("409", "Consumer Deleted"), ("503", "No Responders")]
)
async def test_a_deleted_consumer_breaks_the_binding(code: str, description: str) -> None:
    source, nats = await started()
    await nats.deliver(nats.status(code, description))
    assert source.needs_restart() == "consumer_missing"
    assert await source.next_batch(0) == []
    assert nats.pulls() == [PULL_BYTES], "a pull request on a consumer that is gone"


async def test_a_publishers_message_with_a_status_header_is_an_event() -> None:
    source, nats = await started()
    await nats.deliver(nats.event(1, 1, data=b"", headers={"Status": "408"}))
    [delivery] = await source.next_batch(0)
    assert (delivery.seq, delivery.subject, delivery.data) == (1, SUBJECT, b"")
    assert delivery.headers == {"Status": "408"}
    assert source.needs_restart() is None


async def test_a_jump_in_the_delivery_sequence_ends_what_is_handed_out_before_it() -> None:
    source, nats = await started()
    for seq, delivered in [(1, 1), (2, 2), (4, 4), (5, 5)]:  # delivery 3 was lost in transit
        await nats.deliver(nats.event(seq, delivered))
    assert source.needs_restart() is None, "a restart before what came first was handed out"
    assert [d.seq for d in await source.next_batch(0)] == [1, 2]
    assert source.needs_restart() == "gap"
    assert await source.next_batch(0) == []
