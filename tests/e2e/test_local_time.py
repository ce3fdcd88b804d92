"""What a person reads from ``cw venue`` and ``cw dlq list``, as processes: local time, a table on
a terminal, lines that do not wrap in a pipe, JSON for programs, and an unknown venue said so."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from contracts import encode_event
from tests import factories as f
from tests.support.processes import ROOT, ProjectorProcess, cw
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e

V = "LY-FM-001"
NAME = "墟沟农贸市场"


def events() -> list[bytes]:
    found = f.at("2023-03-07 09:20")
    due = {"issue_id": "ISS-1", "order_no": "LY-ZG-010", "assignee": "李明",
           "due_at": f.at("2023-03-22 17:30").isoformat()}  # fmt: skip
    return [
        encode_event(e)
        for e in (
            f.venue(V, f.at("2023-02-03 09:00"), name=NAME),
            f.issue(V, "ISS-1", found),
            f.event("RectificationDue", V, found, due),
            f.issue(V, "ISS-2", f.at("2023-03-07 23:59")),
            f.issue(V, "ISS-3", f.at("2023-03-08 00:01")),  # the next local day
            f.venue("LY-EMPTY", f.at("2023-02-03 09:00"), name="无问题场所"),
        )
    ]


@pytest.fixture
async def projected(
    env: dict[str, str], projector: ProjectorProcess, tmp_path: Path
) -> AsyncIterator[dict[str, str]]:
    """The events above, published by ``cw publish`` and projected by ``cw run projector``."""
    assert cw(env, "init").returncode == 0
    lines = events()
    (tmp_path / "venue.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    assert cw(env, "publish", str(tmp_path / "venue.jsonl")).returncode == 0
    projector.start()
    db = await asyncpg.connect(env["CW_DATABASE_URL"])

    async def archived() -> bool:
        try:
            return bool(await db.fetchval("SELECT count(*) FROM event_archive") == len(lines))
        except asyncpg.UndefinedTableError:
            return False

    try:
        await eventually(archived, within=60, what="the projector archives the events")
    finally:
        await db.close()
    assert projector.stop() == 0
    yield env


def on_a_terminal(env: dict[str, str], *args: str, columns: int) -> tuple[int, str]:
    """``cw ARGS`` with its output on a pseudo-terminal ``columns`` wide, as a person runs it."""
    parent, child = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.cli", *args],
        env={**env, "COLUMNS": str(columns), "TERM": "xterm", "NO_COLOR": "1"},
        cwd=ROOT,
        stdout=child,
        stderr=child,
        stdin=subprocess.DEVNULL,
    )
    os.close(child)
    out = b""
    while True:
        try:
            chunk = os.read(parent, 65536)
        except OSError:  # EIO: the process closed its end
            break
        if not chunk:
            break
        out += chunk
    os.close(parent)
    return proc.wait(60), out.decode()


async def test_a_pipe_gets_one_line_per_issue_in_beijing_time(projected: dict[str, str]) -> None:
    shown = cw(projected, "venue", V, "--as-of", "2023-03-07")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith(f"场所 {NAME} ({V}, 连云区) 截至 2023-03-07 23:59:59 北京时间: ")
    assert "2 个问题" in lines[0]  # the end of the 7th: 23:59 in, 00:01 the next day out
    assert lines[1] == "第一责任人 王建国 13800000000"
    heads = lines[2].split("\t")
    rows = [dict(zip(heads, line.split("\t"), strict=True)) for line in lines[3:]]
    assert [r["问题编号"] for r in rows] == ["ISS-1", "ISS-2"]
    assert (rows[0]["发现时间"], rows[0]["整改期限"]) == ("2023-03-07 09:20", "2023-03-22 17:30")
    assert (rows[0]["状态"], rows[0]["整改责任人"]) == ("整改中", "李明")
    assert rows[1]["发现时间"] == "2023-03-07 23:59"


async def test_as_of_takes_a_local_time_and_rfc3339(projected: dict[str, str]) -> None:
    local = cw(projected, "venue", V, "--as-of", "2023-03-07 09:20")
    assert "截至 2023-03-07 09:20 北京时间: 1 个问题" in local.stdout
    offset = cw(projected, "venue", V, "--as-of", "2023-03-07T01:20Z")
    assert "截至 2023-03-07 09:20 北京时间: 1 个问题" in offset.stdout
    bad = cw(projected, "venue", V, "--as-of", "2023-3-7")
    assert bad.returncode == 2
    assert "argument --as-of: '2023-3-7' is not a moment" in bad.stderr


async def test_json_for_programs(projected: dict[str, str]) -> None:
    shown = cw(projected, "venue", V, "--as-of", "2023-04-01", "--json")
    assert shown.returncode == 0, shown.stderr
    doc = json.loads(shown.stdout)
    assert doc["as_of"] == "2023-04-01T23:59:59.999999+08:00"
    (venue,) = doc["venues"]
    assert (venue["name"], venue["first_responsible"]["name"]) == (NAME, "王建国")
    assert [i["status"] for i in venue["issues"]] == ["overdue", "open", "open"]
    assert venue["issues"][0]["due_at"] == "2023-03-22T17:30:00+08:00"


async def test_an_unknown_venue_says_so_and_exits_1(projected: dict[str, str]) -> None:
    unknown = cw(projected, "venue", "LY-NOWHERE")
    assert unknown.returncode == 1
    assert "未找到场所 LY-NOWHERE" in unknown.stderr and "no event" in unknown.stderr
    assert unknown.stdout == ""
    elsewhere = cw(projected, "venue", V, "--district", "海州区", "--json")
    assert elsewhere.returncode == 1
    assert "（海州区）" in elsewhere.stderr and "它在连云区有事件" in elsewhere.stderr
    assert "it has events in district 320703" in elsewhere.stderr
    empty = cw(projected, "venue", "LY-EMPTY")
    assert empty.returncode == 0
    assert "场所 无问题场所 (LY-EMPTY, 连云区)" in empty.stdout and ": 0 个问题" in empty.stdout


async def test_a_terminal_gets_a_table(projected: dict[str, str]) -> None:
    code, text = on_a_terminal(projected, "venue", V, "--as-of", "2023-03-10", columns=160)
    assert code == 0, text
    assert "问题描述" in text and "已逾期" not in text and "整改中" in text
    header = next(line for line in text.splitlines() if "问题编号" in line)
    assert "\t" not in header
    code, narrow = on_a_terminal(projected, "venue", V, "--as-of", "2023-03-10", columns=60)
    assert code == 0, narrow
    assert "ISS-1  整改中  防蝇防鼠防尘（三防） 较重  复审迎检" in narrow


async def test_dlq_list_in_a_pipe_does_not_wrap(env: dict[str, str], tmp_path: Path) -> None:
    assert cw(env, "init").returncode == 0
    long_field = "x" * 120
    bad = [
        f.wire(f.issue(V, "I1", f.at("2023-03-07 09:20"))).replace(b"+08:00", b"", 1),
        f.wire(f.issue(V, "I2", f.at("2023-03-07 09:20"))).replace(
            b'"data":{', b'"data":{"' + long_field.encode() + b'":1,', 1
        ),
        b"{not json",
    ]
    (tmp_path / "bad.jsonl").write_bytes(b"\n".join(bad) + b"\n")
    assert cw(env, "publish", str(tmp_path / "bad.jsonl")).returncode == 1
    listed = cw(env, "dlq", "list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0] == "CW_DEAD_LETTERS: 3 dead letters (intake 3)"
    assert lines[1].split("\t") == ["seq", "stage", "rejected at", "from", "reason (field: why)"]
    rows = [line.split("\t") for line in lines[2:]]
    assert len(rows) == 3 and all(len(r) == 5 for r in rows)  # one line each, never wrapped
    assert long_field in rows[1][4]
    assert all(r[2].endswith(" +08:00") for r in rows)  # local time, with its offset
    shown = cw(env, "dlq", "show", rows[0][0])
    assert f"rejected at: {rows[0][2]} (北京时间)" in shown.stdout


def test_venue_before_cw_init_says_what_to_do(env: dict[str, str]) -> None:
    shown = cw(env, "venue", V)
    assert shown.returncode == 2
    assert "run cw init" in shown.stderr and "Traceback" not in shown.stderr
