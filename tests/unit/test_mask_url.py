"""What ``cw init`` prints of a server's URL: never a password or a token."""

from __future__ import annotations

import pytest

from services.common.connect import mask_url

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("nats://127.0.0.1:4222", "nats://127.0.0.1:4222"),
        ("nats://user:pw@h:4222", "nats://user:***@h:4222"),
        ("nats://s3cr3t-token@h:4222", "nats://***@h:4222"),
        ("nats://a:1@h1:4222,nats://h2:4222", "nats://a:***@h1:4222,nats://h2:4222"),
        ("postgresql://postgres@127.0.0.1:5432/cw", "postgresql://postgres@127.0.0.1:5432/cw"),
        ("postgresql://cw:p%40ss@db:5432/cw", "postgresql://cw:***@db:5432/cw"),
        ("postgresql://cw@db/cw?password=pw&sslmode=require",
         "postgresql://cw@db/cw?password=***&sslmode=require"),
    ],
)  # fmt: skip
def test_passwords_and_tokens_are_masked(url: str, shown: str) -> None:
    assert mask_url(url) == shown
