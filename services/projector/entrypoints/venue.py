"""What ``cw venue`` prints: a table for a person on a terminal, tab-separated lines that never
wrap for a pipe, JSON for programs. Every time is in the campaign's zone; districts and checklist
items are named as the campaign file names them (JSON: the code and the name)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from services.common.campaign import OUTSIDE, Campaign, Names
from services.common.localtime import rfc3339, shown, zone_label
from services.projector.domain.model import Issue, IssueStatus, VenueAsOf

STATUS_ZH: dict[IssueStatus, str] = {
    "open": "待整改",
    "rectifying": "整改中",
    "overdue": "已逾期",
    "closed": "已销号",
}
SEVERITY_ZH = {"minor": "一般", "major": "较重", "critical": "严重"}
STATUS_STYLE: dict[IssueStatus, str] = {
    "open": "yellow",
    "rectifying": "cyan",
    "overdue": "bold red",
    "closed": "green",
}
COLUMNS = (
    "问题编号", "阶段", "检查项", "严重程度", "状态", "发现时间", "整改期限", "整改责任人",
    "交办单号", "销号时间", "备注", "问题描述",
)  # fmt: skip
"""The columns of the tab-separated lines, in order; the table shows ``TABLE_COLUMNS`` of them."""


def header(found: VenueAsOf, as_of: datetime, zone: ZoneInfo, *, names: Names) -> list[str]:
    """``场所 墟沟农贸市场 (LY-FM-001, 连云区) 截至 2023-03-15 23:59:59 北京时间: 3 个问题 ...``,
    then the venue's responsible people."""
    v = found.venue
    name = f"{v.name} " if v is not None else "(未登记) "
    counts = Counter(status for _, status in found.issues)
    by_status = "，".join(f"{STATUS_ZH[s]} {counts[s]}" for s in STATUS_ZH if counts[s])
    first = (
        f"场所 {name}({found.venue_id}, {names.district(found.district)}) "
        f"截至 {shown(as_of, zone, seconds=None)} {zone_label(zone)}: {len(found.issues)} 个问题"
        + (f"（{by_status}）" if by_status else "")
    )
    if v is None:
        return [first, "尚未收到该场所的登记（VenueRegistered）"]
    people = [f"第一责任人 {_person(v.first_responsible_name, v.first_responsible_phone)}"]
    if v.officer_name:
        people.append(f"责任干部 {_person(v.officer_name, v.officer_phone)}")
    return [first, "；".join(people)]


def _person(name: str, phone: str | None) -> str:
    return f"{name} {phone}" if phone else name


def cells(issue: Issue, status: IssueStatus, campaign: Campaign) -> tuple[str, ...]:
    """One issue, as the columns ``COLUMNS`` name."""
    zone = campaign.timezone
    notes = []
    if issue.rebound:
        notes.append("反复反弹")
    if issue.recheck_failures:
        notes.append(f"复查未通过 {issue.recheck_failures} 次")
    if issue.closed_on_time is False:
        notes.append("逾期销号")
    return (
        issue.issue_id,
        _phase_title(issue.phase, campaign),
        campaign.names.item(issue.item_code),
        SEVERITY_ZH.get(issue.severity, issue.severity),
        STATUS_ZH[status],
        shown(issue.found_at, zone),
        shown(issue.due_at, zone),
        issue.assignee or "-",
        issue.order_no or "-",
        shown(issue.closed_at, zone),
        "，".join(notes) or "-",
        issue.description or "-",
    )


def _phase_title(phase: str, campaign: Campaign) -> str:
    if phase == OUTSIDE:
        return "阶段外"
    return next((p.title for p in campaign.phases if p.name == phase), phase)


TABLE_COLUMNS = (
    "问题编号", "检查项", "严重程度", "状态", "发现时间", "整改期限", "整改责任人", "销号时间",
    "备注", "问题描述",
)  # fmt: skip
"""The table's columns: ``COLUMNS`` but the phase and the order number, which a terminal has no
room for (the tab-separated lines and --json have them)."""
SHORT = {"严重程度": "程度", "整改责任人": "责任人"}
"""Shorter headings where the values are short: the table fits more terminals."""
DESCRIPTION_MIN = 16
"""Columns (8 Chinese characters) the description needs at least, or the table is unreadable."""


def print_table(console: Console, found: VenueAsOf, as_of: datetime, campaign: Campaign) -> None:
    """For a person at a terminal: a table when it fits (rich measures a Chinese character as
    two columns), else one block per issue."""
    for line in header(found, as_of, campaign.timezone, names=campaign.names):
        console.print(line, markup=False, highlight=False)
    if not found.issues:
        return
    rows = [
        (status, dict(zip(COLUMNS, cells(issue, status, campaign), strict=True)))
        for issue, status in found.issues
    ]
    fixed = TABLE_COLUMNS[:-1]
    widths = [
        max(cell_len(SHORT.get(name, name)), *(cell_len(r[name]) for _, r in rows))
        for name in fixed
    ]
    # Between two columns: a blank on each side and the box's (blank) divider; nothing at the
    # edges (pad_edge and show_edge off); one column to spare.
    room = console.width - sum(widths) - 3 * len(fixed) - 1
    if room < DESCRIPTION_MIN:
        _print_blocks(console, rows)
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, highlight=False)
    for name in fixed:
        table.add_column(SHORT.get(name, name), no_wrap=True)
    table.add_column(TABLE_COLUMNS[-1], no_wrap=True)
    for status, row in rows:
        # Text, not markup: a description may hold brackets.
        table.add_row(
            *(
                Text(row[name], style=STATUS_STYLE[status] if name == "状态" else "")
                for name in fixed
            ),
            Text("\n".join(fold(row[TABLE_COLUMNS[-1]], room))),
        )
    console.print(table)


def fold(text: str, width: int) -> list[str]:
    """``text`` cut into lines of at most ``width`` terminal columns, a Chinese character
    counting two. (rich's own ``overflow="fold"`` drops a character at each cut of Chinese text.)
    """
    lines, line, used = [], "", 0
    for char in text:
        w = cell_len(char)
        if used + w > width and line:
            lines.append(line)
            line, used = "", 0
        line, used = line + char, used + w
    return [*lines, line]


def _print_blocks(console: Console, rows: list[tuple[IssueStatus, dict[str, str]]]) -> None:
    """The narrow terminal's form: a line of what and how bad, one of when and who, the text."""
    for status, r in rows:
        console.print()
        first = Text(f"{r['问题编号']}  ")
        first.append(r["状态"], style=STATUS_STYLE[status])
        first.append(f"  {r['检查项']} {r['严重程度']}  {r['阶段']}")
        if r["备注"] != "-":
            first.append(f"  {r['备注']}")
        console.print(first, highlight=False)
        when = [f"发现 {r['发现时间']}", f"期限 {r['整改期限']}"]
        if r["销号时间"] != "-":
            when.append(f"销号 {r['销号时间']}")
        lines = ["  ".join(when)]
        if r["整改责任人"] != "-" or r["交办单号"] != "-":
            lines.append(f"整改责任人 {r['整改责任人']}  交办单号 {r['交办单号']}")
        for line in [*lines, r["问题描述"]]:
            console.print(Text(f"  {line}"), highlight=False)


def plain_lines(found: VenueAsOf, as_of: datetime, campaign: Campaign) -> list[str]:
    """For a pipe: the header, then one tab-separated line per issue, never wrapped."""
    lines = header(found, as_of, campaign.timezone, names=campaign.names)
    if found.issues:
        lines.append("\t".join(COLUMNS))
        lines.extend(
            "\t".join(_one_line(c) for c in cells(issue, status, campaign))
            for issue, status in found.issues
        )
    return lines


def _one_line(text: str) -> str:
    return " ".join(text.split())


def as_json(
    venue_id: str,
    district: str | None,
    found: list[VenueAsOf],
    as_of: datetime,
    zone: ZoneInfo,
    *,
    names: Names,
) -> dict[str, Any]:
    """The document ``cw venue --json`` prints (README: "cw venue --json"). Every key is always
    there (``null`` when unknown); times are RFC 3339 with the campaign zone's offset; a
    district and an item by its code and its name (``district_name``, ``item_title``)."""
    return {
        "venue_id": venue_id,
        "district": district,
        "as_of": rfc3339(as_of, zone),
        "time_zone": zone.key,
        "venues": [_venue_json(v, zone, names) for v in found],
    }


def _venue_json(found: VenueAsOf, zone: ZoneInfo, names: Names) -> dict[str, Any]:
    v = found.venue
    return {
        "district": found.district,
        "district_name": names.district(found.district),
        "venue_id": found.venue_id,
        "registered": v is not None,
        "name": v.name if v else None,
        "kind": v.kind if v else None,
        "street": v.street if v else None,
        "address": v.address if v else None,
        "first_responsible": (
            {"name": v.first_responsible_name, "phone": v.first_responsible_phone} if v else None
        ),
        "officer": (
            {"name": v.officer_name, "phone": v.officer_phone} if v and v.officer_name else None
        ),
        "issues": [_issue_json(issue, status, zone, names) for issue, status in found.issues],
    }


def _issue_json(issue: Issue, status: IssueStatus, zone: ZoneInfo, names: Names) -> dict[str, Any]:
    return {
        "issue_id": issue.issue_id,
        "phase": issue.phase,
        "item_code": issue.item_code,
        "item_title": names.item(issue.item_code),
        "category": issue.category,
        "severity": issue.severity,
        "status": status,
        "description": issue.description,
        "found_at": rfc3339(issue.found_at, zone),
        "due_at": rfc3339(issue.due_at, zone),
        "order_no": issue.order_no,
        "assignee": issue.assignee,
        "closed_at": rfc3339(issue.closed_at, zone),
        "closed_on_time": issue.closed_on_time,
        "recheck_failures": issue.recheck_failures,
        "rebound": issue.rebound,
    }
