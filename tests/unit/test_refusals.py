"""Reading what NATS refused (nats-py hands it over lower-cased, through the error callback)."""

from __future__ import annotations

import asyncio

import pytest

from services.common.refusals import Refusals, SubjectRefused

pytestmark = pytest.mark.unit

# As nats-py passes it on, and as connect.py's _refusal() trims it.
PUBLISH = 'permissions violation for publish to "cw.events.110101.ly-fm-001.issuefound'
SUBSCRIBE = 'permissions violation for subscription to "_inbox.abc.*'


def test_a_refused_publish_is_said_with_the_subject_as_sent() -> None:
    refusals = Refusals()
    heard: list[SubjectRefused] = []
    refusals.listen(heard.append)
    refusals(PUBLISH)
    refusals("some other error")  # not a refusal: ignored
    [refused] = heard
    assert refused.action == "publish" and refusals.first is refused
    assert refused.about("cw.events.110101.LY-FM-001.IssueFound")
    said = str(refused.as_sent("cw.events.110101.LY-FM-001.IssueFound"))
    assert said == (
        "NATS refused to let this user publish to cw.events.110101.LY-FM-001.IssueFound: this "
        "publisher may only publish for its own district (check the file's districts, and the "
        "user in CW_NATS_URL or CW_NATS_CREDS)"
    )


def test_a_refused_inbox_and_a_refused_api_are_said_without_a_lower_cased_subject() -> None:
    refusals = Refusals()
    refusals(SUBSCRIBE)
    assert refusals.first is not None and "set CW_NATS_INBOX_PREFIX" in str(refusals.first)
    refusals.forget()
    assert refusals.first is None
    refusals('permissions violation for publish to "$js.api.stream.info.cw_events')
    assert str(refusals.first).startswith("NATS refused to let this user use the JetStream API")


async def test_race_ends_a_wait_that_would_never_be_answered() -> None:
    refusals = Refusals()
    assert await refusals.race(asyncio.sleep(0, "answered")) == "answered"
    never = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_soon(refusals, PUBLISH)
    with pytest.raises(SubjectRefused):
        await refusals.race(never)
    assert never.cancelled()
