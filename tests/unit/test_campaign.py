from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.common.campaign import OUTSIDE, CampaignError, load_campaign, parse_campaign
from services.common.durations import format_duration, parse_duration

pytestmark = pytest.mark.unit
CST = timezone(timedelta(hours=8))


@pytest.mark.parametrize(
    ("moment", "phase"),
    [
        (datetime(2023, 1, 31, 23, 59, tzinfo=CST), OUTSIDE),
        (datetime(2023, 2, 1, 0, 0, tzinfo=CST), "self_check"),
        (datetime(2023, 2, 28, 23, 59, tzinfo=CST), "self_check"),
        # 2023-02-28 16:00 UTC is already March 1st in Lianyun.
        (datetime(2023, 2, 28, 16, 0, tzinfo=UTC), "re_review"),
        (datetime(2023, 5, 31, 23, 59, tzinfo=CST), "re_review"),
        (datetime(2023, 6, 1, 0, 0, tzinfo=CST), "long_term"),
        (datetime(2031, 1, 1, tzinfo=CST), "long_term"),
    ],
)
def test_the_shipped_campaign_follows_the_seed_plan(moment: datetime, phase: str) -> None:
    assert load_campaign().phase_of(moment) == phase


def test_a_campaign_file_names_its_own_dates() -> None:
    campaign = parse_campaign(
        {
            "timezone": "Asia/Shanghai",
            "phases": [
                {"name": "self_check", "start": "2026-03-01", "end": "2026-04-01"},
                {"name": "re_review", "start": "2026-04-01", "end": "2026-07-01"},
            ],
            "rules": {"rebound_window": "30d"},
        }
    )
    assert campaign.phase_of(datetime(2026, 3, 10, tzinfo=CST)) == "self_check"
    assert campaign.phase_of(datetime(2026, 8, 1, tzinfo=CST)) == OUTSIDE
    assert campaign.rebound_window == timedelta(days=30)


@pytest.mark.parametrize(
    ("phases", "message"),
    [
        ([{"name": "cleanup", "start": "2026-01-01"}], "is not one of"),
        ([{"name": "self_check", "start": "2026-02-30"}], "must be a date"),
        (
            [
                {"name": "self_check", "start": "2026-01-01", "end": "2026-03-01"},
                {"name": "re_review", "start": "2026-02-01"},
            ],
            "overlap",
        ),
        ([{"name": "self_check", "start": "2026-03-01", "end": "2026-02-01"}], "ends before"),
        ([], "at least one phase"),
    ],
)
def test_a_bad_campaign_file_says_what_is_wrong(phases: list[object], message: str) -> None:
    with pytest.raises(CampaignError, match=message):
        parse_campaign({"phases": phases})


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("72h", 259200), ("30d", 2592000), ("5s", 5), ("250ms", 0.25), ("1h30m", 5400), (7, 7)],
)
def test_durations_read_like_people_write_them(text: str | int, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "72", "h", "3 days", "5x", "1h 30m"])
def test_a_bad_duration_names_the_rule(text: str) -> None:
    with pytest.raises(ValueError, match="number and a unit"):
        parse_duration(text)


def test_durations_print_back_in_the_same_words() -> None:
    assert [format_duration(parse_duration(t)) for t in ("72h", "30d", "90s")] == [
        "3d",
        "30d",
        "90s",
    ]
