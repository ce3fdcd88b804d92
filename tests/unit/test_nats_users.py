"""The users' permissions in code are the ones ``deploy/nats-users.conf`` ships, and each role
has only its own part."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.permissions.domain import users

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def test_the_shipped_users_file_holds_what_the_code_says() -> None:
    shipped = (ROOT / "deploy" / "nats-users.conf").read_text(encoding="utf-8").splitlines()
    missing = [line for line in users.deploy_users() if line not in shipped]
    assert missing == [], "regenerate deploy/nats-users.conf from services/permissions"


def test_a_publisher_may_publish_its_district_and_its_dead_letters_only() -> None:
    p = users.publisher("320703")
    assert p.publish == ("cw.events.320703.>", "cw.dlq.intake.320703")
    assert p.subscribe == ("_INBOX_320703.>",)


def test_no_one_but_the_operator_may_touch_streams_or_delete_messages() -> None:
    for role in users.SERVICES:
        allowed = users.service_permissions(role).publish
        assert [s for s in allowed if ".STREAM." in s and ".INFO." not in s
                and ".MSG.GET." not in s] == []  # fmt: skip
        # The one wildcard in the API: the tokens of a consumer's filter subject.
        assert [s for s in allowed if s.startswith("$JS.API") and s.endswith(">")
                and ".CONSUMER.CREATE." not in s] == []  # fmt: skip
        assert users.service_permissions(role).subscribe == (f"_INBOX_{role}.>",)
    assert "$JS.API.>" in users.operator().publish


def test_each_service_publishes_only_what_it_produces() -> None:
    def produced(role: str) -> list[str]:
        return [s for s in users.service_permissions(role).publish if s.startswith("cw.")]

    assert produced("projector") == ["cw.dlq.projector"]
    assert produced("reminders") == ["cw.reminders.>"]
    assert produced("notifier") == ["cw.dlq.notifier"]


def test_a_projector_partition_gets_its_own_durable() -> None:
    allowed = users.projector(["projector-a", "projector-b"]).publish
    for durable in ("projector-a", "projector-b"):
        assert f"$JS.API.CONSUMER.CREATE.CW_EVENTS.{durable}.>" in allowed
        assert f"$JS.ACK.CW_EVENTS.{durable}.>" in allowed
