"""CW_NATS_CREDS: which kind of credentials file it is, and a clear refusal when it is neither
(its contents never shown)."""

from __future__ import annotations

from pathlib import Path

import nkeys
import pytest

from services.common.connect import NatsAccess, Refused
from services.common.settings import Settings

pytestmark = pytest.mark.unit

JWT_CREDS = """-----BEGIN NATS USER JWT-----
eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.e30.c2ln
------END NATS USER JWT------

-----BEGIN USER NKEY SEED-----
SUAIBDPBAUTWCWBKIO6XHQNINK5FWJW4OHLXC3HQ2KFE4PEJUA44CNHTC4
------END USER NKEY SEED------
"""


def test_a_creds_file_is_handed_to_nats_py_by_its_path(tmp_path: Path) -> None:
    creds = tmp_path / "district.creds"
    creds.write_text(JWT_CREDS)
    options = NatsAccess("nats://h:4222", creds).options()
    assert options["user_credentials"] == str(creds)
    assert "nkeys_seed_str" not in options


def test_an_nkey_seed_file_is_read_as_a_seed(tmp_path: Path) -> None:
    seed = nkeys.encode_seed(bytes(32), nkeys.PREFIX_BYTE_USER).decode()
    path = tmp_path / "projector.nk"
    path.write_text(seed + "\n")
    assert NatsAccess("nats://h:4222", path).options()["nkeys_seed_str"] == seed


def test_a_file_that_is_neither_is_refused_by_name_without_its_contents(tmp_path: Path) -> None:
    path = tmp_path / "wrong.txt"
    path.write_text("hunter2-not-a-seed")
    with pytest.raises(Refused) as refused:
        NatsAccess("nats://h:4222", path).options()
    assert str(path) in str(refused.value)
    assert "hunter2" not in str(refused.value)


def test_a_missing_file_is_refused_in_plain_words(tmp_path: Path) -> None:
    with pytest.raises(Refused, match=r"cannot read CW_NATS_CREDS .*missing\.nk"):
        NatsAccess("nats://h:4222", tmp_path / "missing.nk").options()


def test_without_a_file_only_the_inbox_prefix_is_set() -> None:
    assert NatsAccess("nats://h:4222").options() == {"inbox_prefix": "_INBOX"}


def test_settings_carry_the_url_the_file_and_the_inbox_prefix(tmp_path: Path) -> None:
    settings = Settings(
        nats_url="nats://u:pw@h:4222",
        nats_creds=tmp_path / "x.creds",
        nats_inbox_prefix="_INBOX_320703",
    )
    access = NatsAccess.from_settings(settings)
    assert access == NatsAccess("nats://u:pw@h:4222", tmp_path / "x.creds", "_INBOX_320703")
    assert access.shown() == f"nats://u:***@h:4222 (credentials {tmp_path / 'x.creds'})"
