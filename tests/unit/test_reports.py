"""``cw report``'s rows and formats on a small campaign, replayed as of a moment (pure)."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import openpyxl
import pytest
from rich.cells import cell_len
from rich.console import Console

from services.common.campaign import ChecklistItem, Names, load_campaign
from services.reports.adapters.views import replayed
from services.reports.domain.model import Facts, Report, WaitingFact
from services.reports.domain.reports import build
from services.reports.entrypoints import output
from tests import factories as f
from tests.read_model_suite import stream

pytestmark = pytest.mark.unit

CAMPAIGN = load_campaign()
M = "LY-FM-001"
AS_OF = f.at("2023-03-15 12:00")


def _events() -> list[object]:
    market = {
        "name": "墟沟农贸市场", "kind": "farmers_market", "street": "墟沟街道",
        "first_responsible": {"name": "王建国", "phone": "13800000001"},
        "officer": {"name": "刘洋", "phone": "0518-82310103"},
    }  # fmt: skip
    return [
        f.event("VenueRegistered", M, f.at("2023-02-01 09:00"), market),
        f.issue(M, "I0", f.at("2023-02-10 10:00"), item_code="FM-WC"),
        f.recheck_passed(M, "I0", f.at("2023-02-20 10:00")),
        f.inspection(M, f.at("2023-03-02 09:00"), items_checked=8, items_failed=2),
        f.inspection(M, f.at("2023-03-11 09:00"), kind="look_back", items_checked=2),
        f.issue(M, "I1", f.at("2023-03-02 10:00")),
        f.due(M, "I1", f.at("2023-03-02 11:00"), f.at("2023-03-10 18:00"), order_no="ZG-1"),
        f.issue(M, "I2", f.at("2023-03-02 10:30"), item_code="FM-PUB"),
        f.due(M, "I2", f.at("2023-03-02 11:00"), f.at("2023-03-05 18:00"), order_no="ZG-2"),
        f.due(M, "I2", f.at("2023-03-05 11:00"), f.at("2023-03-12 18:00"), order_no="ZG-2"),
        f.recheck_passed(M, "I2", f.at("2023-03-08 10:00")),
        f.issue(M, "I3", f.at("2023-03-03 10:00"), item_code="FM-WC"),  # a rebound of I0
        f.issue("LY-X-9", "I4", f.at("2023-03-04 10:00")),  # a venue not registered
        f.issue(M, "I9", f.at("2023-03-20 10:00")),  # after the moment: not there yet
    ]


def facts(district: str | None = None) -> Facts:
    return replayed(stream(_events()), AS_OF, district, CAMPAIGN)  # type: ignore[arg-type]


def one(name: str, district: str | None = None) -> Report:
    (report,) = build(facts(district), [name])
    return report


def test_the_phase_summary_shows_coverage_kinds_and_the_pass_rate() -> None:
    rows = one("summary").rows
    assert [(r["phase"], r["venue_kind"]) for r in rows] == [
        ("self_check", "farmers_market"), ("re_review", "farmers_market"),
        ("re_review", "unregistered"),
    ]  # fmt: skip
    # Registered, never inspected in self_check: there, with 0 (coverage); long_term has not
    # started by the moment, so it has no row; I9 came after it.
    assert {k: rows[0][k] for k in ("venues", "venues_inspected", "coverage", "pass_rate")} == {
        "venues": 1, "venues_inspected": 0, "coverage": 0.0, "pass_rate": None,
    }  # fmt: skip
    assert rows[1] == {
        "district": "320703", "phase": "re_review", "venue_kind": "farmers_market",
        "venues": 1, "venues_inspected": 1, "coverage": 1.0, "inspections": 2,
        "self_check": 0, "supervision": 1, "look_back": 1, "re_review": 0,
        "items_checked": 10, "pass_rate": 0.8, "issues_found": 3, "issues_open": 2,
        "issues_overdue": 1, "issues_closed": 1, "closed_on_time": 1, "rebounds": 1,
    }  # fmt: skip


def test_days_overdue_count_a_started_day() -> None:
    (row,) = one("overdue").rows
    # 2023-03-10 18:00 to 2023-03-15 12:00: 4 days and 18 hours, the fifth day started.
    assert (row["issue_id"], row["days_overdue"]) == ("I1", 5)


def test_a_district_with_nothing_has_empty_reports() -> None:
    assert facts("320706").venue_phases == ()
    assert one("overdue", "320706").rows == ()


def test_csv_exact() -> None:
    # The byte order mark first: Excel on a Chinese Windows then reads UTF-8, not GBK. A
    # person's name and phone each in a column of its own.
    assert output.as_csv(one("overdue"), CAMPAIGN, "zh") == (
        "\ufeff区,区名称,场所编号,场所,检查项,检查项名称,问题编号,交办单号,整改期限,逾期天数,"
        "第一责任人,第一责任人电话,责任干部,责任干部电话\r\n"
        "320703,连云区,LY-FM-001,墟沟农贸市场,FM-3F,防蝇防鼠防尘（三防）,I1,ZG-1,"
        "2023-03-10 18:00,5,王建国,13800000001,刘洋,0518-82310103\r\n"
    )
    assert output.as_csv(one("overdue"), CAMPAIGN, "zh").encode()[:3] == b"\xef\xbb\xbf"
    # Empty where there is no value (a pass rate with nothing checked), the street of a
    # venue not registered too.
    assert output.as_csv(one("streets"), CAMPAIGN, "en").removeprefix(output.BOM).splitlines() == [
        "district,district name,street,phase,venues,venues inspected,coverage,inspections,"
        "pass rate,issues found,open,overdue,closed,rebounds",
        "320703,连云区,墟沟街道,self_check,1,0,0.0%,0,,1,0,0,1,0",
        "320703,连云区,墟沟街道,re_review,1,1,100.0%,2,80.0%,3,2,1,1,1",
        "320703,连云区,,re_review,1,0,0.0%,0,,1,1,0,0,0",
    ]


def test_markdown_exact() -> None:
    report = one("on_time")
    assert output.as_markdown(facts(), [report], CAMPAIGN, "zh") == (
        "连云区商务局 创卫复审 2023：截至 2023-03-15 12:00:00 北京时间，全部辖区\n"
        "\n"
        "## 按期销号（原期限与延期后期限）\n"
        "\n"
        "| 区 | 阶段 | 已销号 | 曾延期 | 按原期限 | 原期限按期率 | 按延期后期限 | 延期后按期率 |\n"
        "|---|---|---:|---:|---:|---:|---:|---:|\n"
        "| 连云区 | 动员自查 | 1 | 0 | 1 | 100.0% | 1 | 100.0% |\n"
        "| 连云区 | 复审迎检 | 1 | 1 | 0 | 0.0% | 1 | 100.0% |\n"
    )
    empty = one("overdue", "320706")
    assert output.as_markdown(facts("320706"), [empty], CAMPAIGN, "en").endswith(
        "## Overdue issues\n\n(none)\n"
    )


def test_json_exact() -> None:
    doc = json.loads(output.as_json(facts(), [one("rebounds")], CAMPAIGN, "en"))
    assert doc == {
        "as_of": "2023-03-15T12:00:00+08:00", "time_zone": "Asia/Shanghai", "district": None,
        "district_name": None,
        "reports": [{
            "name": "rebounds", "title": "Rebounds",
            "columns": [
                {"key": "district", "label": "district"},
                {"key": "district_name", "label": "district name"},
                {"key": "venue_id", "label": "venue id"},
                {"key": "venue", "label": "venue"},
                {"key": "item_code", "label": "item"},
                {"key": "item_title", "label": "item title"},
                {"key": "issue_id", "label": "issue"},
                {"key": "phase", "label": "phase"},
                {"key": "found_at", "label": "found"},
                {"key": "status", "label": "status"},
            ],
            "rows": [{
                "district": "320703", "district_name": "连云区", "venue_id": "LY-FM-001",
                "venue": "墟沟农贸市场", "item_code": "FM-WC", "item_title": "公共厕所",
                "issue_id": "I3", "phase": "re_review",
                "found_at": "2023-03-03T10:00:00+08:00", "status": "open",
            }],
        }],
    }  # fmt: skip
    rates = json.loads(output.as_json(facts(), [one("summary")], CAMPAIGN, "zh"))
    assert [r["pass_rate"] for r in rates["reports"][0]["rows"]] == [None, 0.8, None]


def test_through_a_pipe_one_tab_separated_line_per_row() -> None:
    lines = output.plain_lines(facts(), [one("rebounds")], CAMPAIGN, "zh")
    assert lines == [
        "连云区商务局 创卫复审 2023：截至 2023-03-15 12:00:00 北京时间，全部辖区",
        "",
        "反复反弹问题",
        "区\t场所编号\t场所\t检查项\t问题编号\t阶段\t发现时间\t状态",
        "连云区\tLY-FM-001\t墟沟农贸市场\t公共厕所\tI3\t复审迎检\t2023-03-03 10:00\t待整改",
    ]
    one_district = output.plain_lines(facts("320703"), [one("rebounds", "320703")], CAMPAIGN, "en")
    assert one_district[0].endswith(", district 320703")
    assert one_district[-1].startswith("320703\tLY-FM-001\t墟沟农贸市场\tFM-WC\t")
    zh = output.heading(facts("320703"), CAMPAIGN, "zh")
    assert zh.endswith("北京时间，辖区 连云区")


def test_item_titles_come_from_the_campaigns_checklist() -> None:
    renamed = replace(
        CAMPAIGN,
        names=Names(
            CAMPAIGN.names.districts,
            (ChecklistItem("FM-3F", "三防设施", "病媒生物防制", ("farmers_market",), "major"),),
        ),
    )
    (row,) = output.plain_lines(facts(), [one("overdue")], renamed, "zh")[-1:]
    assert "\t三防设施\t" in row
    csv_rows = output.as_csv(one("overdue"), renamed, "zh").splitlines()
    assert ",FM-3F,三防设施," in csv_rows[1]


def test_unknown_item_codes_are_listed_by_district() -> None:
    events = [*_events(), f.issue(M, "I5", f.at("2023-03-05 10:00"), item_code="FM-NEW")]
    events.append(f.issue("HZ-1", "I6", f.at("2023-03-06 10:00"), item_code="FM-NEW",
                          district="320706"))  # fmt: skip
    history = stream(events)  # type: ignore[arg-type]
    (report,) = build(replayed(history, AS_OF, None, CAMPAIGN), ["unknown_items"])
    assert [
        (r["district"], r["item_code"], r["issues"], r["issues_open"], r["venues"])
        for r in report.rows
    ] == [("320703", "FM-NEW", 1, 1, 1), ("320706", "FM-NEW", 1, 1, 1)]
    lines = output.plain_lines(facts(), [report], CAMPAIGN, "zh")
    assert lines[-2:] == [
        "连云区\tFM-NEW\t1\t1\t1\t2023-03-05 10:00\t2023-03-05 10:00",
        "海州区\tFM-NEW\t1\t1\t1\t2023-03-06 10:00\t2023-03-06 10:00",
    ]
    # Every code the shipped examples' issues use is in the checklist: nothing unknown.
    assert one("unknown_items").rows == ()


def test_xlsx_holds_the_csv_rows_with_real_dates_and_numbers() -> None:
    reports = [one("overdue"), one("summary")]
    book = openpyxl.load_workbook(io.BytesIO(output.as_xlsx(facts(), reports, CAMPAIGN, "zh")))
    assert book.sheetnames == ["逾期问题清单", "分阶段汇总（按区、场所类型）"]
    assert book.properties.title == output.heading(facts(), CAMPAIGN, "zh")
    for sheet, report in zip(book.worksheets, reports, strict=True):
        assert sheet.freeze_panes == "A2"
        assert all(cell.font.bold for cell in sheet[1])
        as_csv = list(csv.reader(io.StringIO(output.as_csv(report, CAMPAIGN, "zh")[1:])))
        cells = [
            [_as_csv_text(cell.value, cell.number_format) for cell in row]
            for row in sheet.iter_rows()
        ]
        assert cells == as_csv
    sheet = book["逾期问题清单"]
    header = [c.value for c in sheet[1]]
    deadline = sheet.cell(2, header.index("整改期限") + 1)
    # A real date on the campaign's wall clock (18:00 in Beijing, not 10:00 UTC).
    assert deadline.value == datetime(2023, 3, 10, 18, 0)
    assert deadline.number_format == "yyyy-mm-dd hh:mm"
    assert sheet.cell(2, header.index("逾期天数") + 1).value == 5
    assert sheet.cell(2, header.index("第一责任人电话") + 1).value == "13800000001"  # text
    # Wide enough for its text, a Chinese character counting two.
    name_column = sheet.column_dimensions["D"]
    assert name_column.width is not None and name_column.width >= cell_len("墟沟农贸市场")
    rate = book.worksheets[1].cell(3, header_index(book.worksheets[1], "合格率"))
    assert (rate.value, rate.number_format) == (0.8, "0.0%")


def header_index(sheet: Any, label: str) -> int:
    return [c.value for c in sheet[1]].index(label) + 1


def _as_csv_text(value: object, number_format: str) -> str:
    """A cell as the CSV shows it: a date local to the minute, a rate as a percentage."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if number_format == "0.0%" and isinstance(value, float | int):
        return f"{value * 100:.1f}%"
    return str(value)


def test_at_80_columns_a_wide_report_is_one_block_per_row() -> None:
    console = Console(width=80, record=True, force_terminal=False)
    output.print_tables(console, facts(), [one("summary"), one("overdue")], CAMPAIGN, "zh")
    lines = console.export_text().splitlines()
    assert max(cell_len(line) for line in lines) <= 80
    # A block per row, its first line unindented, the others indented; every value keeps its
    # heading beside it, whole: nothing is cut or wrapped mid-value.
    assert sum(line.startswith("区 连云区  阶段") for line in lines) == 3
    text = "\n".join(lines)
    assert "合格率 80.0%" in text and "场所类型 农贸市场" in text
    assert "整改期限 2023-03-10 18:00" in text and "第一责任人电话 13800000001" in text
    # A narrow report on a wide terminal is still a table.
    wide = Console(width=200, record=True, force_terminal=False)
    output.print_tables(wide, facts(), [one("overdue")], CAMPAIGN, "zh")
    assert "区 连云区" not in wide.export_text()


def test_a_terminal_table_measures_chinese_as_two_columns() -> None:
    console = Console(width=200, record=True, force_terminal=False)
    output.print_tables(console, facts(), [one("overdue")], CAMPAIGN, "zh")
    text = console.export_text()
    row = next(line for line in text.splitlines() if "墟沟农贸市场" in line)
    header = next(line for line in text.splitlines() if "第一责任人" in line)
    assert "13800000001" in row
    # The columns line up: each heading starts where its values start, in terminal cells.
    assert cell_len(header[: header.index("第一责任人")]) == cell_len(row[: row.index("王建国")])


def test_waiting_shows_the_longest_waiting_first_with_its_age() -> None:
    base = facts()
    lost = WaitingFact(
        "320703", M, "I-LOST", "RectificationDue", "e1", f.at("2023-03-05 11:00"),
        AS_OF - timedelta(days=3, hours=4, minutes=9),
    )  # fmt: skip
    fresh = WaitingFact(
        "320703", "LY-X-9", "I-NEW", "RecheckPassed", "e2", f.at("2023-03-15 11:00"),
        AS_OF - timedelta(minutes=7),
    )  # fmt: skip
    (report,) = build(dataclasses.replace(base, waiting=(fresh, lost)), ["waiting"])
    lines = output.as_csv(report, CAMPAIGN, "zh").removeprefix(output.BOM).splitlines()
    assert lines == [
        "已等待,区,区名称,场所编号,场所,问题编号,事件类型,事件时间,收到时间,事件编号",
        "3天4小时,320703,连云区,LY-FM-001,墟沟农贸市场,I-LOST,限期整改,2023-03-05 11:00,"
        "2023-03-12 07:51,e1",
        "7分,320703,连云区,LY-X-9,,I-NEW,复查通过,2023-03-15 11:00,2023-03-15 11:53,e2",
    ]
    # For a person, the district by the campaign file's name.
    assert output.tab_separated(report, CAMPAIGN, "zh")[1].split("\t")[:3] == [
        "3天4小时", "连云区", "LY-FM-001",
    ]  # fmt: skip
    doc = json.loads(output.as_json(base, [report], CAMPAIGN, "en"))
    assert [r["waiting_for"] for r in doc["reports"][0]["rows"]] == [274140, 420]
    assert output.text(timedelta(hours=5, minutes=12), report.columns[0], "en", CAMPAIGN) == (
        "5h 12m"
    )
