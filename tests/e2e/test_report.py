"""``cw report`` as a person and a program run it: as the read-only role, every format, a
table on a terminal, lines that never wrap through a pipe, and the exit statuses."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import asyncpg
import openpyxl
import pytest
from rich.cells import cell_len

from contracts import encode_event
from services.devstack.system import free_port
from tests import factories as f
from tests.e2e.test_local_time import on_a_terminal
from tests.integration.test_reports import as_role
from tests.support.processes import ProjectorProcess, cw
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e

PASSWORD = "report-e2e-Pw"
V = "LY-FM-001"


def events() -> list[bytes]:
    market = {
        "name": "墟沟农贸市场", "kind": "farmers_market", "street": "墟沟街道",
        "first_responsible": {"name": "王建国", "phone": "13800000001"},
        "officer": {"name": "刘洋", "phone": "0518-82310103"},
    }  # fmt: skip
    return [
        encode_event(e)
        for e in (
            f.event("VenueRegistered", V, f.at("2023-02-01 09:00"), market),
            f.inspection(V, f.at("2023-03-02 09:00"), items_checked=8, items_failed=2),
            f.issue(V, "I1", f.at("2023-03-02 10:00")),
            f.due(V, "I1", f.at("2023-03-02 11:00"), f.at("2023-03-10 18:00"), order_no="ZG-1"),
            f.issue(V, "I2", f.at("2023-03-02 10:30"), item_code="FM-PUB"),
            f.due(V, "I2", f.at("2023-03-02 11:00"), f.at("2023-03-05 18:00"), order_no="ZG-2"),
            f.due(V, "I2", f.at("2023-03-05 11:00"), f.at("2023-03-12 18:00"), order_no="ZG-2"),
            f.recheck_passed(V, "I2", f.at("2023-03-08 10:00")),
            # An order for an issue whose IssueFound never came: archived, and it waits.
            f.due(V, "I-LOST", f.at("2023-03-09 11:00"), f.at("2023-03-20 18:00"), order_no="ZG-9"),
        )
    ]


@pytest.fixture
async def env(nats_url: str, database_url: str, tmp_path: Path) -> AsyncIterator[dict[str, str]]:
    """The events above projected by ``cw run projector``; ``cw report`` reads as a read-only
    role of this test's own (roles are shared by the whole cluster)."""
    role = f"cw_reader_{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "CW_NATS_URL": nats_url,
        "CW_DATABASE_URL": database_url,
        "CW_METRICS_PORT": str(free_port()),
        "CW_PROJECTOR_FETCH_WAIT": "200ms",
        "CW_READER_ROLE": role,
        "CW_READER_PASSWORD": PASSWORD,
    }
    assert cw(env, "init").returncode == 0
    lines = events()
    (tmp_path / "events.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    assert cw(env, "publish", str(tmp_path / "events.jsonl")).returncode == 0
    projector = ProjectorProcess(env, tmp_path / "projector.log")
    projector.start()
    db = await asyncpg.connect(database_url)
    try:

        async def archived() -> bool:
            return bool(await db.fetchval("SELECT count(*) FROM event_archive") == len(lines))

        await eventually(archived, within=60, what="the projector archives the events")
        assert projector.stop() == 0
        yield {**env, "CW_READER_DATABASE_URL": as_role(database_url, role, PASSWORD)}
    finally:
        projector.ensure_gone()
        await db.execute(f"DROP OWNED BY {role}")
        await db.execute(f"DROP ROLE {role}")
        await db.close()


async def test_every_format_as_the_read_only_role(env: dict[str, str]) -> None:
    piped = cw(env, "report", "--as-of", "2023-03-15 12:00")
    assert piped.returncode == 0, piped.stderr
    lines = piped.stdout.splitlines()
    assert lines[0].endswith("截至 2023-03-15 12:00:00 北京时间，全部辖区")
    row = lines[lines.index("逾期问题清单") + 2].split("\t")
    assert row == [
        "连云区", V, "墟沟农贸市场", "防蝇防鼠防尘（三防）", "I1", "ZG-1", "2023-03-10 18:00", "5",
        "王建国", "13800000001", "刘洋", "0518-82310103",
    ]  # fmt: skip
    on_time = cw(env, "report", "on-time", "--format", "csv", "--lang", "en")
    assert on_time.returncode == 0, on_time.stderr
    assert on_time.stdout.startswith("\ufeffdistrict,district name,phase,")  # the BOM Excel needs
    assert list(csv.reader(io.StringIO(on_time.stdout)))[1] == [
        "320703", "连云区", "re_review", "1", "1", "0", "0.0%", "1", "100.0%",
    ]  # fmt: skip
    doc = json.loads(cw(env, "report", "summary", "--format", "json").stdout)
    rows = {(r["phase"], r["venue_kind"]): r for r in doc["reports"][0]["rows"]}
    assert rows[("re_review", "farmers_market")]["pass_rate"] == 0.75
    assert rows[("long_term", "farmers_market")]["venues_inspected"] == 0  # coverage
    markdown = cw(env, "report", "streets", "--format", "markdown", "--district", "连云区")
    assert markdown.stdout.splitlines()[0].endswith("辖区 连云区")
    assert (
        "## 街道汇总" in markdown.stdout and "| 连云区 | 墟沟街道 | 复审迎检 |" in markdown.stdout
    )
    unknown = cw(env, "report", "unknown-items", "--format", "json")
    assert unknown.returncode == 0, unknown.stderr
    assert json.loads(unknown.stdout)["reports"][0]["rows"] == []


async def test_xlsx_goes_to_a_file_and_holds_the_csv_rows(
    env: dict[str, str], tmp_path: Path
) -> None:
    refused = cw(env, "report", "overdue", "--format", "xlsx")
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.strip().count("\n") == 0 and "--output" in refused.stderr
    book_path = tmp_path / "逾期.xlsx"
    asked = ("report", "overdue", "--as-of", "2023-03-15 12:00")
    written = cw(env, *asked, "--format", "xlsx", "--output", str(book_path))
    assert written.returncode == 0 and written.stdout == "", written.stderr
    as_csv = cw(env, *asked, "--format", "csv")
    rows = list(csv.reader(io.StringIO(as_csv.stdout.removeprefix("\ufeff"))))
    sheet = openpyxl.load_workbook(book_path).worksheets[0]
    cells = [
        [
            "" if v is None else v.strftime("%Y-%m-%d %H:%M") if isinstance(v, datetime) else str(v)
            for v in row
        ]
        for row in sheet.iter_rows(values_only=True)
    ]
    assert cells == rows
    assert rows[1][rows[0].index("第一责任人电话")] == "13800000001"


async def test_waiting_lists_the_follow_up_whose_issue_found_never_came(
    env: dict[str, str],
) -> None:
    shown = cw(env, "report", "waiting")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    header = lines[lines.index("等待问题登记的后续事件") + 1].split("\t")
    (row,) = [dict(zip(header, line.split("\t"), strict=True)) for line in lines[-1:]]
    assert header[0] == "已等待" and re.fullmatch(r"\d+(分|小时\d*分?)", row["已等待"])
    assert (row["场所"], row["问题编号"], row["事件类型"], row["事件时间"]) == (
        "墟沟农贸市场", "I-LOST", "限期整改", "2023-03-09 11:00",
    )  # fmt: skip
    assert re.fullmatch(r"20\d\d-\d\d-\d\d \d\d:\d\d", row["收到时间"])  # local time
    # Every report (the default) shows it too, but not as of a past moment: it is of now.
    assert "等待问题登记的后续事件" in cw(env, "report").stdout
    past = cw(env, "report", "--as-of", "2023-03-15")
    assert past.returncode == 0 and "等待问题登记的后续事件" not in past.stdout
    refused = cw(env, "report", "waiting", "--as-of", "2023-03-15")
    assert refused.returncode == 2 and "now" in refused.stderr


async def test_a_terminal_gets_tables(env: dict[str, str]) -> None:
    code, text = on_a_terminal(env, "report", "overdue", "--as-of", "2023-03-15", columns=200)
    assert code == 0, text
    assert "逾期问题清单" in text and "\t" not in text
    header = next(line for line in text.splitlines() if "第一责任人" in line)
    row = next(line for line in text.splitlines() if "墟沟农贸市场" in line)
    assert header.index("整改期限") < header.index("第一责任人")
    assert "2023-03-10 18:00" in row
    narrow_code, narrow = on_a_terminal(env, "report", "--as-of", "2023-03-15", columns=80)
    assert narrow_code == 0, narrow
    plain = re.sub(r"\x1b\[[0-9;]*m", "", narrow)  # styles (italic), not text
    assert max(cell_len(line) for line in plain.splitlines()) <= 80
    assert "第一责任人电话 13800000001" in narrow  # a block per row, values whole


async def test_exit_statuses(env: dict[str, str]) -> None:
    nothing = cw(env, "report", "--district", "999999")
    assert nothing.returncode == 1 and "999999" in nothing.stderr
    bad = cw(env, "report", "--as-of", "2023-02-30")
    assert bad.returncode == 2 and "--as-of" in bad.stderr
    several = cw(env, "report", "--format", "csv")
    assert several.returncode == 2 and "one report" in several.stderr
    down = {**env, "CW_READER_DATABASE_URL": f"postgresql://r:{PASSWORD}@127.0.0.1:{free_port()}/x"}
    unreachable = cw(down, "report")
    assert unreachable.returncode == 2
    assert "CW_READER_DATABASE_URL" in unreachable.stderr and PASSWORD not in unreachable.stderr
