"""What ``cw report`` prints: a table for a person at a terminal (rich, a Chinese character two
columns wide; one block per row when the table is wider than the terminal), tab-separated lines
that never wrap through a pipe, CSV (with a UTF-8 byte order mark, for Excel), an Excel workbook,
JSON or Markdown. Every time is in the campaign's zone; Simplified Chinese unless ``--lang en``.

Nothing here knows a report's columns: each format follows ``Report.columns`` and their kinds.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Literal, TypeAlias

from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from services.common.campaign import OUTSIDE, Campaign
from services.common.localtime import rfc3339, shown, zone_label
from services.reports.domain.model import Column, Facts, Report, Value

Lang: TypeAlias = Literal["zh", "en"]

VENUE_KIND_ZH = {
    "farmers_market": "农贸市场",
    "mall_supermarket": "大型商场超市",
    "other": "其他",
    "unregistered": "未登记",
}
STATUS_ZH = {"open": "待整改", "rectifying": "整改中", "overdue": "已逾期", "closed": "已销号"}
EVENT_TYPE_ZH = {
    "VenueRegistered": "场所登记",
    "InspectionRecorded": "检查记录",
    "IssueFound": "发现问题",
    "RectificationDue": "限期整改",
    "RecheckFailed": "复查未通过",
    "RecheckPassed": "复查通过",
}
NUMERIC = frozenset({"int", "rate"})


def text(value: Value, column: Column, lang: Lang, campaign: Campaign, missing: str = "-") -> str:
    """One value for a person: a rate as a percentage, a time on the campaign's wall clock, a
    phase, venue kind, status, district or checklist item by its Chinese name (``--lang en``:
    its code)."""
    if value is None:
        return missing
    kind = column.kind
    if kind == "rate":
        assert isinstance(value, float | int)
        return f"{value * 100:.1f}%"
    if kind == "time":
        assert isinstance(value, datetime)
        return shown(value, campaign.timezone)
    if kind == "duration":
        assert isinstance(value, timedelta)
        return _duration(value, lang)
    if isinstance(value, bool):
        return ("是" if value else "否") if lang == "zh" else ("yes" if value else "no")
    if lang == "zh":
        if kind == "phase":
            if value == OUTSIDE:
                return "阶段外"
            return next((p.title for p in campaign.phases if p.name == value), str(value))
        if kind == "venue_kind":
            return VENUE_KIND_ZH.get(str(value), str(value))
        if kind == "status":
            return STATUS_ZH.get(str(value), str(value))
        if kind == "event_type":
            return EVENT_TYPE_ZH.get(str(value), str(value))
        if kind == "district":
            return campaign.names.district(str(value))
        if kind == "item":
            return campaign.names.item(str(value))
    return str(value)


def _duration(value: timedelta, lang: Lang) -> str:
    """``3天4小时``, ``5小时12分``, ``7分`` (``--lang en``: ``3d 4h``): the two largest units."""
    minutes = int(value.total_seconds()) // 60
    days, hours, mins = minutes // 1440, minutes // 60 % 24, minutes % 60
    units = ("天", "小时", "分") if lang == "zh" else ("d", "h", "m")
    parts = [(days, units[0]), (hours, units[1]), (mins, units[2])]
    while parts and parts[0][0] == 0:
        parts.pop(0)
    shown_parts = [f"{n}{u}" for n, u in parts[:2] if n] or [f"0{units[2]}"]
    return ("" if lang == "zh" else " ").join(shown_parts)


NAME_COLUMNS = {
    "district": Column("district_name", "区名称", "district name"),
    "item": Column("item_title", "检查项名称", "item title"),
}
"""For programs (csv, json), a district or item column keeps its code and this one follows it."""


def for_programs(report: Report, campaign: Campaign) -> Report:
    """``report`` with a name column after each district or item column (whose values stay
    codes): csv and json carry both."""
    columns: list[Column] = []
    named: list[tuple[str, str, Callable[[str], str]]] = []
    for c in report.columns:
        extra = NAME_COLUMNS.get(c.kind)
        if extra is None:
            columns.append(c)
            continue
        columns += [replace(c, kind="text"), extra]
        lookup = campaign.names.district if c.kind == "district" else campaign.names.item
        named.append((c.key, extra.key, lookup))

    def with_names(row: dict[str, Value]) -> dict[str, Value]:
        names = {n: None if row[k] is None else find(str(row[k])) for k, n, find in named}
        return {**row, **names}

    rows = tuple(with_names(row) for row in report.rows)
    return replace(report, columns=tuple(columns), rows=rows)


def _label(thing: Column | Report, lang: Lang) -> str:
    return thing.zh if lang == "zh" else thing.en


def heading(facts: Facts, campaign: Campaign, lang: Lang) -> str:
    """``截至 2023-03-15 23:59:59 北京时间，辖区 连云区`` (or every district)."""
    zone = campaign.timezone
    moment = shown(facts.as_of, zone, seconds=True)
    if lang == "zh":
        where = f"辖区 {campaign.names.district(facts.district)}" if facts.district else "全部辖区"
        return f"{campaign.name}：截至 {moment} {zone_label(zone)}，{where}"
    where = f"district {facts.district}" if facts.district else "every district"
    return f"{campaign.name}: as of {moment} {zone.key}, {where}"


def print_tables(
    console: Console, facts: Facts, reports: Sequence[Report], campaign: Campaign, lang: Lang
) -> None:
    """The heading, then each report as ``print_report`` shows it."""
    console.print(heading(facts, campaign, lang), markup=False, highlight=False)
    for report in reports:
        console.print()
        print_report(console, report, campaign, lang)


def print_report(console: Console, report: Report, campaign: Campaign, lang: Lang) -> None:
    """A table when it fits the terminal (rich measures a Chinese character as two columns),
    else one block per row: a table squeezed into 80 columns wraps every cell."""
    if not report.rows:
        console.print(Text(_label(report, lang), style="italic"))
        console.print("  （无）" if lang == "zh" else "  (none)", highlight=False)
        return
    if _natural_width(report, campaign, lang) > console.width:
        _print_blocks(console, report, campaign, lang)
        return
    table = Table(
        title=_label(report, lang), title_justify="left", box=box.SIMPLE_HEAD,
        highlight=False, pad_edge=False,
    )  # fmt: skip
    for c in report.columns:
        table.add_column(
            _label(c, lang), justify="right" if c.kind in NUMERIC else "left", no_wrap=False
        )
    for row in report.rows:
        table.add_row(*(Text(text(row[c.key], c, lang, campaign)) for c in report.columns))
    console.print(table)


def _natural_width(report: Report, campaign: Campaign, lang: Lang) -> int:
    """Terminal columns the table needs unwrapped: the widest cell of each column, a blank on
    each side of a column but the outer ones."""
    widths = [
        max(
            cell_len(_label(c, lang)),
            *(cell_len(text(row[c.key], c, lang, campaign)) for row in report.rows),
        )
        for c in report.columns
    ]
    return sum(widths) + 2 * (len(widths) - 1)


def _print_blocks(console: Console, report: Report, campaign: Campaign, lang: Lang) -> None:
    """The narrow terminal's form: the title, then per row a blank line and its columns as
    ``heading value`` pairs, as many to a line as fit, the lines after the first indented."""
    console.print(Text(_label(report, lang), style="italic"))
    width = max(console.width, 20)
    for row in report.rows:
        console.print()
        line, indent = "", ""
        for c in report.columns:
            value = text(row[c.key], c, lang, campaign)
            if value == "-":
                continue
            piece = f"{_label(c, lang)} {_one_line(value)}"
            if line and cell_len(line) + 2 + cell_len(piece) > width:
                console.print(Text(line), highlight=False, crop=False, overflow="fold")
                line, indent = "", "  "
            line = f"{line}  {piece}" if line else f"{indent}{piece}"
        if line:
            console.print(Text(line), highlight=False, crop=False, overflow="fold")


def _one_line(value: str) -> str:
    return " ".join(value.split())


def plain_lines(
    facts: Facts, reports: Sequence[Report], campaign: Campaign, lang: Lang
) -> list[str]:
    """The table's form through a pipe: per report its title, then tab-separated lines (the
    header first), never wrapped; a blank line between reports."""
    lines = [heading(facts, campaign, lang)]
    for report in reports:
        lines.extend(["", _label(report, lang), *tab_separated(report, campaign, lang)])
    return lines


def tab_separated(report: Report, campaign: Campaign, lang: Lang) -> list[str]:
    """The header, then a line per row; a value's own line ends and tabs become blanks."""
    lines = ["\t".join(_label(c, lang) for c in report.columns)]
    lines.extend(
        "\t".join(_one_line(text(row[c.key], c, lang, campaign)) for c in report.columns)
        for row in report.rows
    )
    return lines


BOM = "\ufeff"
"""Excel on a Chinese Windows reads a CSV file in the local code page (GBK) unless it starts
with a UTF-8 byte order mark; with it, Chinese text opens as written."""


def as_csv(report: Report, campaign: Campaign, lang: Lang) -> str:
    """One report as CSV (RFC 4180, CRLF line ends), after a UTF-8 byte order mark (``BOM``):
    the header in the language asked, empty where there is no value, times local, rates as
    percentages; a district or item by its code and, in the next column, its name."""
    report = for_programs(report, campaign)
    out = io.StringIO()
    out.write(BOM)
    writer = csv.writer(out)
    writer.writerow(_label(c, lang) for c in report.columns)
    for row in report.rows:
        writer.writerow(text(row[c.key], c, lang, campaign, missing="") for c in report.columns)
    return out.getvalue()


def _escape(value: str) -> str:
    return _one_line(value).replace("\\", "\\\\").replace("|", "\\|")


def as_markdown(facts: Facts, reports: Sequence[Report], campaign: Campaign, lang: Lang) -> str:
    """GitHub-flavoured Markdown: a heading line, then per report a title and a table."""
    lines = [heading(facts, campaign, lang)]
    for report in reports:
        lines.extend(["", f"## {_label(report, lang)}", ""])
        if not report.rows:
            lines.append("（无）" if lang == "zh" else "(none)")
            continue
        lines.append("| " + " | ".join(_escape(_label(c, lang)) for c in report.columns) + " |")
        lines.append(
            "|" + "|".join("---:" if c.kind in NUMERIC else "---" for c in report.columns) + "|"
        )
        for row in report.rows:
            cells = (_escape(text(row[c.key], c, lang, campaign)) for c in report.columns)
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _json_value(value: Value, column: Column, campaign: Campaign) -> Any:
    if isinstance(value, datetime):
        return rfc3339(value, campaign.timezone)
    if isinstance(value, timedelta):
        return int(value.total_seconds())
    if column.kind == "rate" and isinstance(value, float):
        return round(value, 4)
    return value


def as_json(facts: Facts, reports: Sequence[Report], campaign: Campaign, lang: Lang) -> str:
    """One document for programs: codes and instants in RFC 3339 with the zone's offset; a rate
    0..1 (``null`` when there is nothing to divide by); a district or item by its code, and its
    name beside it (``district_name``, ``item_title``). ``title`` and each column's ``label``
    are in the language asked."""
    reports = [for_programs(r, campaign) for r in reports]
    doc = {
        "as_of": rfc3339(facts.as_of, campaign.timezone),
        "time_zone": campaign.timezone.key,
        "district": facts.district,
        "district_name": campaign.names.district(facts.district) if facts.district else None,
        "reports": [
            {
                "name": r.name,
                "title": _label(r, lang),
                "columns": [{"key": c.key, "label": _label(c, lang)} for c in r.columns],
                "rows": [
                    {c.key: _json_value(row[c.key], c, campaign) for c in r.columns}
                    for row in r.rows
                ],
            }
            for r in reports
        ],
    }
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


XLSX_TIME_FORMAT = "yyyy-mm-dd hh:mm"
XLSX_RATE_FORMAT = "0.0%"
XLSX_WIDTH_MAX = 60
"""No column is made wider than this (a long description), so one never fills the screen."""
_SHEET_NAME_BAD = str.maketrans(dict.fromkeys("[]:*?/\\", "_"))


def _xlsx_value(value: Value, column: Column, lang: Lang, campaign: Campaign) -> Any:
    """A cell: a time as a real Excel date on the campaign's wall clock (Excel has no zones),
    a count as a number, a rate as a fraction shown as a percentage; the rest as text."""
    if value is None:
        return None
    if column.kind == "time" and isinstance(value, datetime):
        return value.astimezone(campaign.timezone).replace(tzinfo=None)
    if column.kind in NUMERIC and not isinstance(value, bool):
        return value
    return text(value, column, lang, campaign)


def _sheet_name(title: str, taken: set[str]) -> str:
    """At most 31 characters, none of ``[]:*?/\\``, unique in the workbook."""
    name = title.translate(_SHEET_NAME_BAD)[:31] or "report"
    n = 2
    while name in taken:
        suffix = f" ({n})"
        name = name[: 31 - len(suffix)] + suffix
        n += 1
    taken.add(name)
    return name


def as_xlsx(facts: Facts, reports: Sequence[Report], campaign: Campaign, lang: Lang) -> bytes:
    """An Excel workbook: a sheet per report, its header row bold and frozen, the same rows as
    the CSV, columns as wide as their text (a Chinese character two), times as Excel dates in
    the campaign's zone, a district or item by its code and, in the next column, its name. The
    heading (campaign, moment, district) is the workbook's title and each sheet's printed page
    header."""
    # Imported here: every cw command builds the parser that imports this module, and openpyxl
    # takes half a second to import.
    from openpyxl import Workbook  # noqa: PLC0415
    from openpyxl.styles import Font  # noqa: PLC0415
    from openpyxl.utils import get_column_letter  # noqa: PLC0415

    book = Workbook()
    default = book.active
    if default is not None:
        book.remove(default)
    title = heading(facts, campaign, lang)
    book.properties.title = title
    bold = Font(bold=True)
    taken: set[str] = set()
    for report in (for_programs(r, campaign) for r in reports):
        sheet = book.create_sheet(_sheet_name(_label(report, lang), taken))
        sheet.append([_label(c, lang) for c in report.columns])
        for cell in sheet[1]:
            cell.font = bold
        sheet.freeze_panes = "A2"
        sheet.oddHeader.center.text = title.replace("&", "&&")
        widths = [cell_len(_label(c, lang)) for c in report.columns]
        for row in report.rows:
            sheet.append([_xlsx_value(row[c.key], c, lang, campaign) for c in report.columns])
            for i, c in enumerate(report.columns):
                widths[i] = max(widths[i], cell_len(text(row[c.key], c, lang, campaign)))
        for i, c in enumerate(report.columns, start=1):
            letter = get_column_letter(i)
            sheet.column_dimensions[letter].width = min(widths[i - 1] + 2, XLSX_WIDTH_MAX)
            if c.kind in ("time", "rate"):
                for (cell,) in sheet.iter_rows(min_row=2, min_col=i, max_col=i):
                    cell.number_format = XLSX_TIME_FORMAT if c.kind == "time" else XLSX_RATE_FORMAT
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
