from __future__ import annotations

import json
import re
from datetime import UTC, datetime, time, timedelta, timezone
from pathlib import Path

import pytest

from contracts.generate import CONTRACTS_DIR
from services.cli import main
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


DISTRICTS = [{"code": "320703", "name": "连云区"}]


def test_a_campaign_file_names_its_own_dates() -> None:
    campaign = parse_campaign(
        {
            "timezone": "Asia/Shanghai",
            "districts": DISTRICTS,
            "phases": [
                {"name": "self_check", "start": "2026-03-01", "end": "2026-04-01"},
                {"name": "re_review", "start": "2026-04-01", "end": "2026-07-01"},
            ],
            "rules": {"rebound_window": "30d", "waiting_alert_after": "36h"},
        }
    )
    assert campaign.phase_of(datetime(2026, 3, 10, tzinfo=CST)) == "self_check"
    assert campaign.phase_of(datetime(2026, 8, 1, tzinfo=CST)) == OUTSIDE
    assert campaign.rebound_window == timedelta(days=30)
    assert campaign.waiting_alert_after == timedelta(hours=36)


def test_follow_ups_waiting_are_alerted_on_after_3_days_unless_the_file_says() -> None:
    assert load_campaign().waiting_alert_after == timedelta(days=3)
    phases = [{"name": "self_check", "start": "2026-03-01"}]
    assert parse_campaign({"phases": phases, "districts": DISTRICTS}).waiting_alert_after == (
        timedelta(days=3)
    )
    for bad, message in (("3 days", "rules.waiting_alert_after: bad duration"), ("0s", "longer")):
        with pytest.raises(CampaignError, match=message):
            parse_campaign(
                {"phases": phases, "districts": DISTRICTS, "rules": {"waiting_alert_after": bad}}
            )


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
        parse_campaign({"phases": phases, "districts": DISTRICTS})


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


def test_the_shipped_campaign_has_reminder_rules() -> None:
    rules = load_campaign().reminders
    assert rules.order_within == timedelta(days=3)
    assert rules.due_soon == (timedelta(hours=72), timedelta(hours=24))
    assert (rules.escalate_every, rules.escalate_max) == (timedelta(hours=72), 3)
    assert (rules.look_back_after, rules.stale_after) == (timedelta(days=30), timedelta(hours=24))
    assert rules.digest_at == time(8, 30)
    assert rules.deputy_head is not None and rules.head is not None


def test_reminder_rules_in_seconds_for_tests() -> None:
    rules = parse_campaign(
        {
            "phases": [{"name": "self_check", "start": "2026-01-01"}],
            "districts": DISTRICTS,
            "reminders": {
                "order_within": "3s",
                "due_soon": ["2s", "1s"],
                "escalate_every": "1s",
                "escalate_max": 2,
                "digest_at": "08:30:15",
                "contacts": {"deputy_head": {"name": "李副局长", "phone": "13900000000"}},
            },
        }
    ).reminders
    assert rules.due_soon == (timedelta(seconds=2), timedelta(seconds=1))
    assert rules.digest_at == time(8, 30, 15)
    assert rules.deputy_head is not None and rules.deputy_head.phone == "13900000000"
    assert rules.head is None


PHASES = [{"name": "self_check", "start": "2026-01-01"}]
ITEM = {
    "code": "FM-SCALE",
    "title": "公平秤",
    "category": "市场管理",
    "venue_kinds": ["farmers_market"],
    "severity": "minor",
}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"phases": PHASES, "nmae": "x"}, "unknown key nmae"),
        ({"phases": [{**PHASES[0], "ends": "2026-02-01"}]}, r"unknown key phases\[0\]\.ends"),
        ({"phases": PHASES, "rules": {"rebound": "9d"}}, "unknown key rules.rebound"),
        ({"phases": PHASES, "reminders": {"stale_afer": "1h"}}, "unknown key reminders.stale_afer"),
        (
            {"phases": PHASES, "reminders": {"contacts": {"boss": {"name": "x"}}}},
            "unknown key reminders.contacts.boss",
        ),
        (
            {"phases": PHASES, "reminders": {"contacts": {"head": {"name": "x", "tel": "1"}}}},
            "unknown key reminders.contacts.head.tel",
        ),
        ({"phases": PHASES, "reminders": {"due_soon": "24h"}}, "must be a list"),
        (
            {"phases": PHASES, "reminders": {"contacts": {"head": {"name": "x", "phone": "a1"}}}},
            "reminders.contacts.head.phone may only contain digits",
        ),
        ({"phases": PHASES, "reminders": {"due_soon": ["24h", "1 day"]}}, r"due_soon\[1\]"),
        ({"phases": PHASES, "reminders": {"escalate_max": "3"}}, "whole number"),
        ({"phases": PHASES, "reminders": {"digest_at": "8:30"}}, "HH:MM"),
        ({"phases": PHASES, "reminders": {"stale_after": "0s"}}, "longer than 0"),
    ],
)
def test_an_unknown_or_bad_reminder_key_is_named(raw: dict[str, object], message: str) -> None:
    with pytest.raises(CampaignError, match=message):
        parse_campaign(raw)


def test_the_shipped_campaign_names_its_districts_and_checklist() -> None:
    names = load_campaign().names
    assert [(d.code, d.name) for d in names.districts] == [
        ("320703", "连云区"), ("320706", "海州区"), ("320707", "赣榆区"),
        ("320722", "东海县"), ("320723", "灌云县"), ("320724", "灌南县"),
    ]  # fmt: skip
    assert (names.district("320703"), names.district("999999")) == ("连云区", "999999")
    assert (names.district_code("海州区"), names.district_code("320706")) == ("320706", "320706")
    assert names.knows_district("320724") and not names.knows_district("320705")
    assert (names.item("FM-SCALE"), names.item("FM-SORT")) == ("公平秤", "垃圾分类")
    assert names.item("FM-NEW") == "FM-NEW" and not names.knows_item("FM-NEW")
    aed = next(i for i in names.checklist if i.code == "MALL-AED")
    assert (aed.venue_kinds, aed.severity) == (("mall_supermarket",), "critical")


def test_every_item_code_of_the_examples_is_in_the_checklist() -> None:
    names = load_campaign().names
    lines = (CONTRACTS_DIR / "examples" / "events.jsonl").read_text("utf-8").splitlines()
    used = {
        e["data"]["item_code"] for e in map(json.loads, lines) if e["event_type"] == "IssueFound"
    }
    assert used and {code for code in used if not names.knows_item(code)} == set()
    source = (CONTRACTS_DIR / "examples_source.py").read_text("utf-8")
    quoted = set(re.findall(r'"((?:FM|MALL)-[A-Z0-9]+)"', source))
    assert quoted and quoted <= {i.code for i in names.checklist}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"district": "320703"}, "unknown key district: a campaign lists its districts"),
        ({"districts": None}, "districts must list the districts"),
        ({"districts": []}, "at least one district"),
        ({"districts": "320703"}, "districts must be a list of tables"),
        (
            {"districts": [{"code": "320703", "name": "连云区", "nmae": "x"}]},
            r"unknown key districts\[0\]\.nmae",
        ),
        (
            {"districts": [{"code": "32070", "name": "连云区"}]},
            r"districts\[0\]\.code must be a 6-digit administrative code",
        ),
        ({"districts": [{"code": "320703"}]}, r"districts\[0\]\.name must be a text"),
        (
            {"districts": [*DISTRICTS, {"code": "320703", "name": "新浦区"}]},
            r"districts\[1\] repeats 320703",
        ),
        ({"checklist": [{**ITEM, "titel": "x"}]}, r"unknown key checklist\[0\]\.titel"),
        (
            {"checklist": [{**ITEM, "code": "fm-scale"}]},
            r"checklist\[0\]\.code must be a checklist item code",
        ),
        ({"checklist": [{**ITEM, "title": ""}]}, r"checklist\[0\]\.title must be a text"),
        ({"checklist": [{**ITEM, "category": 3}]}, r"checklist\[0\]\.category must be a text"),
        (
            {"checklist": [{**ITEM, "venue_kinds": ["market"]}]},
            r"checklist\[0\]\.venue_kinds must list venue kinds",
        ),
        ({"checklist": [{**ITEM, "venue_kinds": []}]}, r"checklist\[0\]\.venue_kinds"),
        (
            {"checklist": [{**ITEM, "severity": "grave"}]},
            r"checklist\[0\]\.severity must be one of minor, major, critical",
        ),
        ({"checklist": [ITEM, ITEM]}, r"checklist\[1\]\.code FM-SCALE is listed twice"),
    ],
)
def test_a_bad_district_or_checklist_item_is_named(
    changes: dict[str, object], message: str
) -> None:
    raw: dict[str, object] = {"phases": PHASES, "districts": DISTRICTS, **changes}
    if changes.get("districts", "") is None:
        del raw["districts"]
    with pytest.raises(CampaignError, match=message):
        parse_campaign(raw)


def test_every_command_reading_a_bad_campaign_file_exits_non_zero(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[phases]]\nname = "self_check"\nstart = "2026-01-01"\n[reminders]\nx = 1\n')
    monkeypatch.setenv("CW_CAMPAIGN_FILE", str(bad))
    monkeypatch.setenv("CW_NATS_URL", "nats://127.0.0.1:1")  # never reached
    monkeypatch.setenv("CW_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    monkeypatch.setenv("CW_METRICS_PORT", "0")
    monkeypatch.setenv("CW_REMINDERS_METRICS_PORT", "0")
    for command in (["init"], ["run", "projector"], ["run", "reminders"], ["venue", "V1"]):
        assert main(command) == 2, command
        err = capsys.readouterr().err
        assert "unknown key reminders.x" in err, (command, err)
