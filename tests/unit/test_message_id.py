"""``message_id_of``: what tells one message from another at the same sequence (the consumers'
tracking rows, ``cw audit``), read from the bytes alone."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.consumer.model import message_id_of

pytestmark = pytest.mark.unit


FORMS: dict[str, Callable[[UUID], str]] = {
    "canonical": str,
    "upper case": lambda u: str(u).upper(),
    "braces": lambda u: f"{{{u}}}",
    "hex": lambda u: u.hex,
}


@given(st.uuids(), st.sampled_from(sorted(FORMS)))
def test_an_id_is_the_uuid_in_its_canonical_form_however_it_is_written(
    value: UUID, form: str
) -> None:
    text = FORMS[form](value)
    assert message_id_of(orjson.dumps({"event_id": text})) == str(value)
    assert message_id_of(orjson.dumps({"reminder_id": text})) == str(value)


def test_an_id_that_is_not_a_uuid_is_kept_and_a_message_without_one_is_digested() -> None:
    assert message_id_of(b'{"event_id": "E-17"}') == "E-17"
    assert message_id_of(b"{not json").startswith("sha256:")
    assert message_id_of(b'{"event_id": ""}').startswith("sha256:")
    assert message_id_of(b"{not json") == message_id_of(b"{not json")
