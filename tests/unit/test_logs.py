"""The services' log lines are stamped on the campaign's clock, with the offset."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from services.common.logs import LocalTimeFormatter, log_zone

pytestmark = pytest.mark.unit


def _record(at: datetime) -> logging.LogRecord:
    record = logging.LogRecord("cw.projector", logging.INFO, __file__, 1, "batch %s", (7,), None)
    record.created = at.timestamp()
    record.msecs = at.microsecond // 1000
    return record


def test_a_log_line_reads_beijing_time_with_its_offset() -> None:
    line = LocalTimeFormatter(ZoneInfo("Asia/Shanghai")).format(
        _record(datetime(2026, 12, 7, 17, 56, 38, 123000, tzinfo=UTC))
    )
    # 17:56 UTC on the 7th is 01:56 on the 8th in Beijing: the date turns too.
    assert line == "2026-12-08 01:56:38.123 +08:00 INFO cw.projector: batch 7"


def test_another_campaign_zone_its_own_offset_across_dst() -> None:
    berlin = LocalTimeFormatter(ZoneInfo("Europe/Berlin"))
    winter = berlin.format(_record(datetime(2026, 1, 15, 12, 0, tzinfo=UTC)))
    summer = berlin.format(_record(datetime(2026, 7, 15, 12, 0, tzinfo=UTC)))
    assert winter.startswith("2026-01-15 13:00:00.000 +01:00 INFO")
    assert summer.startswith("2026-07-15 14:00:00.000 +02:00 INFO")


def test_the_zone_is_the_campaigns_and_utc_when_the_file_cannot_be_read(tmp_path: Path) -> None:
    assert log_zone(None) == ZoneInfo("Asia/Shanghai")  # the shipped campaign
    # The service itself says what is wrong with the file; its log lines still say +00:00.
    assert log_zone(tmp_path / "missing.toml") == ZoneInfo("UTC")
    (tmp_path / "bad.toml").write_text("name = ", encoding="utf-8")
    assert log_zone(tmp_path / "bad.toml") == ZoneInfo("UTC")
