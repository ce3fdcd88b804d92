"""What ``cw report`` prints: a table for a person at a terminal (rich, a Chinese character two
columns wide), tab-separated lines that never wrap through a pipe, CSV, JSON or Markdown. Every
time is in the campaign's zone; Simplified Chinese unless ``--lang en``."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, Literal, TypeAlias

from rich import box
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
        if kind == "district":
            return campaign.names.district(str(value))
        if kind == "item":
            return campaign.names.item(str(value))
    return str(value)


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
    console.print(heading(facts, campaign, lang), markup=False, highlight=False)
    for report in reports:
        console.print()
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
        if not report.rows:
            console.print(Text(_label(report, lang), style="italic"))
            console.print("  （无）" if lang == "zh" else "  (none)", highlight=False)
            continue
        console.print(table)


def _one_line(value: str) -> str:
    return " ".join(value.split())


def plain_lines(
    facts: Facts, reports: Sequence[Report], campaign: Campaign, lang: Lang
) -> list[str]:
    """The table's form through a pipe: per report its title, then tab-separated lines (the
    header first), never wrapped; a blank line between reports."""
    lines = [heading(facts, campaign, lang)]
    for report in reports:
        lines.extend(["", _label(report, lang)])
        lines.append("\t".join(_label(c, lang) for c in report.columns))
        lines.extend(
            "\t".join(_one_line(text(row[c.key], c, lang, campaign)) for c in report.columns)
            for row in report.rows
        )
    return lines


def as_csv(report: Report, campaign: Campaign, lang: Lang) -> str:
    """One report as CSV (RFC 4180, CRLF line ends): the header in the language asked, empty
    where there is no value, times local, rates as percentages; a district or item by its code
    and, in the next column, its name."""
    report = for_programs(report, campaign)
    out = io.StringIO()
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
