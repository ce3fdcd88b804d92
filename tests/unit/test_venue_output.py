"""What ``cw venue`` prints: the replayed venue, its table, its lines for a pipe, its JSON."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from rich.cells import cell_len
from rich.console import Console

from services.projector.domain.model import VenueAsOf
from services.projector.domain.projection import venues_as_of
from services.projector.entrypoints import venue as output
from tests import factories as f
from tests.read_model_suite import CAMPAIGN, stream

pytestmark = pytest.mark.unit
V = "LY-FM-001"
LONG = "排水沟防鼠网孔径过大，大门门缝超过0.6厘米，熟食区未设防蝇设施。[见照片]"


def history() -> list[object]:
    t = f.at("2023-03-07 09:20")
    return [
        f.venue(V, f.at("2023-02-03 09:00"), name="墟沟农贸市场"),
        f.issue(V, "ISS-1", t),
        f.event("RectificationDue", V, t, {"issue_id": "ISS-1", "order_no": "LY-ZG-010",
                "due_at": f.at("2023-03-22 17:30").isoformat(), "assignee": "李明"}),
        f.event("IssueFound", V, t + timedelta(minutes=5), {"issue_id": "ISS-2",
                "item_code": "FM-ZONE", "severity": "critical", "description": LONG}),
        f.recheck_passed(V, "ISS-2", f.at("2023-03-10 10:00")),
        f.issue(V, "ISS-3", f.at("2023-04-01 09:00")),
        f.venue(V, f.at("2023-05-01 09:00"), name="墟沟农贸市场（新址）"),
        f.issue(V, "ISS-X", t, district="320706"),
    ]  # fmt: skip


def at(moment: str) -> list[VenueAsOf]:
    return venues_as_of(stream(history()), f.at(moment), CAMPAIGN.rebound_window)  # type: ignore[arg-type]


def test_one_venue_per_district_with_its_registration_as_of_the_moment() -> None:
    found = at("2023-03-25 00:00")
    assert [(v.district, v.venue_id) for v in found] == [("320703", V), ("320706", V)]
    here, there = found
    assert here.venue is not None and here.venue.name == "墟沟农贸市场"
    assert there.venue is None
    assert {i.issue_id: s for i, s in here.issues} == {"ISS-1": "overdue", "ISS-2": "closed"}
    later = at("2023-06-01 00:00")[0].venue
    assert later is not None and later.name == "墟沟农贸市场（新址）"


def test_a_venue_whose_events_all_came_later_exists_with_no_issues() -> None:
    (here, _) = at("2023-01-01 00:00")
    assert here.issues == ()
    assert here.venue is not None and here.venue.name == "墟沟农贸市场"  # its first registration


def test_no_events_no_venue() -> None:
    assert venues_as_of([], f.at("2023-03-25 00:00"), CAMPAIGN.rebound_window) == []


def test_the_header_names_the_venue_the_moment_in_beijing_time_and_the_counts() -> None:
    here = at("2023-03-25 00:00")[0]
    first, people = output.header(
        here, f.at("2023-03-25 00:00"), CAMPAIGN.timezone, names=CAMPAIGN.names
    )
    assert first == (
        f"场所 墟沟农贸市场 ({V}, 连云区) 截至 2023-03-25 00:00 北京时间: "
        "2 个问题（已逾期 1，已销号 1）"
    )
    assert people == "第一责任人 王建国 13800000000"


def test_lines_for_a_pipe_are_tab_separated_local_and_one_per_issue() -> None:
    here = at("2023-03-25 00:00")[0]
    lines = output.plain_lines(here, f.at("2023-03-25 00:00"), CAMPAIGN)
    assert lines[2].split("\t") == list(output.COLUMNS)
    overdue = dict(zip(output.COLUMNS, lines[3].split("\t"), strict=True))
    assert overdue["状态"] == "已逾期"
    assert overdue["发现时间"] == "2023-03-07 09:20"
    assert overdue["整改期限"] == "2023-03-22 17:30"
    assert (overdue["整改责任人"], overdue["交办单号"], overdue["阶段"]) == (
        "李明", "LY-ZG-010", "复审迎检"
    )  # fmt: skip
    assert overdue["检查项"] == "防蝇防鼠防尘（三防）"  # the checklist's title, not FM-3F
    assert len(lines) == 5


def render(found: VenueAsOf, width: int) -> str:
    console = Console(file=io.StringIO(), width=width, force_terminal=True, color_system=None)
    output.print_table(console, found, f.at("2023-03-25 00:00"), CAMPAIGN)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(text, str)
    return text


def test_a_wide_terminal_gets_a_table_that_keeps_every_character() -> None:
    text = render(at("2023-03-25 00:00")[0], 160)
    assert "问题描述" in text and "已逾期" in text and "2023-03-22 17:30" in text
    assert all(cell_len(line) <= 160 for line in text.splitlines())
    # The description is folded by hand, every character kept (rich's fold loses some).
    described = "".join(line.rstrip().split("   ")[-1].strip() for line in text.splitlines()[4:])
    assert LONG in described


def test_a_narrow_terminal_gets_one_block_per_issue() -> None:
    text = render(at("2023-03-25 00:00")[0], 80)
    assert "问题描述" not in text
    assert "ISS-1  已逾期  防蝇防鼠防尘（三防） 较重  复审迎检" in text
    assert "发现 2023-03-07 09:20  期限 2023-03-22 17:30" in text
    assert LONG in text.replace("\n", "")


def test_fold_counts_a_chinese_character_as_two_columns() -> None:
    assert output.fold("入口公示栏未公示当日", 8) == ["入口公示", "栏未公示", "当日"]
    assert output.fold("ab入口", 3) == ["ab", "入", "口"]


def test_json_has_stable_keys_and_rfc3339_times_with_the_offset() -> None:
    found = at("2023-03-25 00:00")
    doc = output.as_json(
        V, None, found, f.at("2023-03-25 00:00"), CAMPAIGN.timezone, names=CAMPAIGN.names
    )
    assert json.loads(json.dumps(doc, ensure_ascii=False)) == doc
    assert list(doc) == ["venue_id", "district", "as_of", "time_zone", "venues"]
    assert doc["as_of"] == "2023-03-25T00:00:00+08:00"
    assert doc["time_zone"] == "Asia/Shanghai"
    here, there = doc["venues"]
    assert (here["registered"], there["registered"], there["name"]) == (True, False, None)
    assert (here["district"], here["district_name"]) == ("320703", "连云区")
    assert (there["district"], there["district_name"]) == ("320706", "海州区")
    issue = here["issues"][0]
    assert (issue["item_code"], issue["item_title"]) == ("FM-3F", "防蝇防鼠防尘（三防）")
    assert list(issue) == [
        "issue_id", "phase", "item_code", "item_title", "category", "severity", "status",
        "description", "found_at", "due_at", "order_no", "assignee", "closed_at",
        "closed_on_time", "recheck_failures", "rebound",
    ]  # fmt: skip
    assert (issue["found_at"], issue["due_at"], issue["status"]) == (
        "2023-03-07T09:20:00+08:00", "2023-03-22T17:30:00+08:00", "overdue"
    )  # fmt: skip
