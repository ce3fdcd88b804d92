"""Times for people: what is shown in the campaign's zone, and what a person may type."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from services.common.localtime import (
    MomentError,
    end_of_day,
    offset_text,
    parse_moment,
    rfc3339,
    shown,
    zone_label,
)

pytestmark = pytest.mark.unit

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_an_0845_visit_stored_in_utc_is_shown_as_0845() -> None:
    visit = utc("2023-02-13 00:45")
    assert shown(visit, SHANGHAI) == "2023-02-13 08:45"
    assert shown(visit, SHANGHAI, offset=True) == "2023-02-13 08:45 +08:00"
    assert shown(visit, SHANGHAI, seconds=True) == "2023-02-13 08:45:00"
    assert rfc3339(visit, SHANGHAI) == "2023-02-13T08:45:00+08:00"


def test_seconds_are_shown_only_when_there_are_any_if_asked_so() -> None:
    assert shown(utc("2023-03-15 06:00"), SHANGHAI, seconds=None) == "2023-03-15 14:00"
    assert shown(utc("2023-03-15 06:00:07.5"), SHANGHAI, seconds=None) == "2023-03-15 14:00:07"


def test_a_missing_time_and_a_naive_one() -> None:
    assert shown(None, SHANGHAI) == "-"
    assert rfc3339(None, SHANGHAI) is None
    with pytest.raises(ValueError, match="naive"):
        shown(datetime(2023, 3, 15, 14, 0), SHANGHAI)


def test_the_zone_is_named_once_in_words_a_reader_knows() -> None:
    assert zone_label(SHANGHAI) == "北京时间"
    assert zone_label(ZoneInfo("PRC")) == "北京时间"
    assert zone_label(BERLIN) == "Europe/Berlin"
    assert offset_text(datetime(2023, 1, 1, tzinfo=timezone(timedelta(hours=-3, minutes=-30)))) == (
        "-03:30"
    )


def test_a_date_means_the_end_of_that_local_day() -> None:
    end = parse_moment("2023-03-15").resolve(SHANGHAI)
    assert end == datetime(2023, 3, 15, 23, 59, 59, 999999, tzinfo=SHANGHAI)
    assert end.astimezone(UTC) == utc("2023-03-15 15:59:59.999999")
    last_minute = datetime(2023, 3, 15, 23, 59, 59, tzinfo=SHANGHAI)
    next_day = datetime(2023, 3, 16, 0, 0, tzinfo=SHANGHAI)
    assert last_minute <= end < next_day


def test_the_end_of_a_day_is_right_on_a_dst_change() -> None:
    """Shanghai has no DST (since 1991); the arithmetic must still hold where there is one."""
    short = end_of_day(datetime(2023, 3, 26).date(), BERLIN)  # 23 hours long
    assert short.utcoffset() == timedelta(hours=2)
    assert short.astimezone(UTC) == utc("2023-03-26 21:59:59.999999")
    long = end_of_day(datetime(2023, 10, 29).date(), BERLIN)  # 25 hours long
    assert long.astimezone(UTC) == utc("2023-10-29 22:59:59.999999")
    assert end_of_day(datetime(1990, 4, 15).date(), SHANGHAI).utcoffset() == timedelta(hours=9)


@pytest.mark.parametrize(
    "text", ["2023-03-15 14:00", "2023-03-15T14:00", "2023-03-15t14:00:00", " 2023-03-15 14:00 "]
)
def test_a_local_time_without_offset_is_read_on_the_campaigns_clock(text: str) -> None:
    assert parse_moment(text).resolve(SHANGHAI).astimezone(UTC) == utc("2023-03-15 06:00")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-03-15T14:00+08:00", "2023-03-15 06:00"),
        ("2023-03-15T06:00Z", "2023-03-15 06:00"),
        ("2023-03-15 06:00:30.25z", "2023-03-15 06:00:30.25"),
        ("2023-03-15T14:00-05:00", "2023-03-15 19:00"),
    ],
)
def test_rfc3339_with_an_offset_is_that_instant_in_any_zone(text: str, expected: str) -> None:
    moment = parse_moment(text)
    assert moment.resolve(SHANGHAI) == moment.resolve(BERLIN) == utc(expected)


@pytest.mark.parametrize(
    "text",
    [
        "2023-3-15",  # not zero-padded
        "15.03.2023",
        "yesterday",
        "",
        "2023-02-30",  # no such day
        "2023-03-15 25:00",
        "2023-03-15T14",  # no minutes
        "2023-03-15T14:00+0800",  # RFC 3339 writes +08:00
        "2023-03-15T14:00+08",
        "20230315",
    ],
)
def test_anything_else_is_refused_naming_the_forms_accepted(text: str) -> None:
    with pytest.raises(MomentError) as caught:
        parse_moment(text)
    message = str(caught.value)
    assert repr(text) in message
    assert "2023-03-15" in message or "not a real date" in message


def test_a_local_time_the_clocks_skipped_is_refused() -> None:
    skipped = parse_moment("2023-03-26 02:30")  # Berlin: 02:00 -> 03:00
    with pytest.raises(MomentError, match="does not exist in Europe/Berlin"):
        skipped.resolve(BERLIN)
    assert skipped.resolve(SHANGHAI).utcoffset() == timedelta(hours=8)
