"""The backup manifest's rules: what it says, read back; what a restore may overwrite."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.backups.domain.manifest import (
    BackupUnusable,
    Manifest,
    StreamBackup,
    blocked,
    checksum_problem,
    parse_manifest,
    size_text,
)

pytestmark = pytest.mark.unit

EVENTS = StreamBackup(
    "CW_EVENTS", "CW_EVENTS.snapshot", 2048, "ab" * 32,
    {"name": "CW_EVENTS", "subjects": ["cw.events.>"]},
    {"messages": 1199, "bytes": 978198, "first_seq": 1, "last_seq": 1200},
)  # fmt: skip


def test_a_manifest_reads_back_as_written() -> None:
    at = datetime(2026, 12, 8, 2, 0, tzinfo=UTC)
    manifest = Manifest(at, at, "2.15.1", (EVENTS,))
    again = parse_manifest(manifest.to_json())
    assert again == manifest
    assert again.stream("CW_EVENTS").last_seq == 1200
    assert EVENTS.summary() == (
        "1,199 messages, sequences 1–1,200, 955.3 KiB stored (snapshot 2.0 KiB)"
    )


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("nope", "is not JSON"),
        ("[]", "is not a JSON object"),
        ('{"format": 2}', "has format 2, not 1"),
        ('{"format": 1, "streams": [{}]}', "is missing or mistypes"),
    ],
)
def test_a_manifest_that_cannot_be_used_says_why(text: str, why: str) -> None:
    with pytest.raises(BackupUnusable, match=why):
        parse_manifest(text)


def test_a_file_must_match_its_manifest() -> None:
    assert checksum_problem(EVENTS, 2048, "ab" * 32) is None
    assert "has 2,047 bytes" in (checksum_problem(EVENTS, 2047, "ab" * 32) or "")
    assert "SHA-256 differs" in (checksum_problem(EVENTS, 2048, "cd" * 32) or "")


def test_a_restore_overwrites_an_existing_stream_only_when_told() -> None:
    wanted = ["CW_EVENTS", "CW_REMINDERS", "CW_DEAD_LETTERS"]
    assert blocked(wanted, ["CW_REMINDERS", "OTHER"], replace=False) == ["CW_REMINDERS"]
    assert blocked(wanted, ["CW_REMINDERS"], replace=True) == []
    assert blocked(wanted, [], replace=False) == []


def test_sizes_read_like_people_write_them() -> None:
    assert [size_text(n) for n in (512, 42_000, 3 * 1024**2, 5 * 1024**3)] == [
        "512 B", "41.0 KiB", "3.0 MiB", "5.0 GiB",
    ]  # fmt: skip
