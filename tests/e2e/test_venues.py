"""``cw venue`` by (part of) a venue's name as well as its id, and ``cw venues``: a table on a
terminal, tab-separated lines through a pipe, one district, JSON."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from rich.cells import cell_len

from contracts import encode_event
from tests import factories as f
from tests.e2e.test_local_time import on_a_terminal
from tests.support.processes import ProjectorProcess, cw
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e

WHEN = f.at("2023-02-01 09:00")
EVENTS = [
    f.venue("LY-FM-001", WHEN, name="墟沟农贸市场", street="墟沟街道"),
    f.venue("LY-FM-002", WHEN, name="墟沟东农贸市场", street="墟沟街道"),
    f.venue("LY-MS-003", WHEN, kind="mall_supermarket", name="苏宁广场超市"),
    f.venue("M7", WHEN, name="新浦农贸市场", district="320706"),
    f.issue("LY-MS-003", "I1", f.at("2023-03-02 10:00"), item_code="MALL-AED"),
]


@pytest.fixture
async def projected(
    env: dict[str, str], database_url: str, tmp_path: Path
) -> AsyncIterator[dict[str, str]]:
    """The venues above in the read model, by ``cw publish`` and ``cw run projector``."""
    assert cw(env, "init").returncode == 0
    path = tmp_path / "venues.jsonl"
    path.write_bytes(b"\n".join(encode_event(e) for e in EVENTS) + b"\n")
    assert cw(env, "publish", str(path)).returncode == 0
    projector = ProjectorProcess(env, tmp_path / "projector.log")
    projector.start()
    db = await asyncpg.connect(database_url)
    try:

        async def archived() -> bool:
            return bool(await db.fetchval("SELECT count(*) FROM event_archive") == len(EVENTS))

        await eventually(archived, within=120, what="the projector archives the events")
        assert projector.stop() == 0
        yield env
    finally:
        projector.ensure_gone()
        await db.close()


async def test_a_venue_by_part_of_its_name(projected: dict[str, str]) -> None:
    one = cw(projected, "venue", "苏宁")
    assert one.returncode == 0, one.stderr
    assert one.stdout.startswith("场所 苏宁广场超市 (LY-MS-003, 连云区) 截至 ")
    assert "\tAED等急救设备和药品\t" in one.stdout  # MALL-AED, by its checklist title
    assert cw(projected, "venue", "墟沟东").stdout.startswith("场所 墟沟东农贸市场 (LY-FM-002,")
    doc = json.loads(cw(projected, "venue", "苏宁", "--json").stdout)
    assert doc["venue_id"] == "LY-MS-003" and doc["venues"][0]["name"] == "苏宁广场超市"
    # Its id still comes first, whole or in part.
    assert cw(projected, "venue", "LY-FM-001").stdout.startswith("场所 墟沟农贸市场 (LY-FM-001,")
    assert cw(projected, "venue", "ms-003").stdout.startswith("场所 苏宁广场超市 (LY-MS-003,")


async def test_several_venues_by_that_name_are_listed_and_none_shown(
    projected: dict[str, str],
) -> None:
    several = cw(projected, "venue", "墟沟")
    assert several.returncode == 1 and several.stdout == ""
    lines = several.stderr.splitlines()
    assert "匹配到 2 个场所" in lines[0]
    assert lines[1:] == ["LY-FM-001\t墟沟农贸市场\t320703", "LY-FM-002\t墟沟东农贸市场\t320703"]
    markets = cw(projected, "venue", "农贸市场", "--district", "海州区")
    assert markets.returncode == 0 and markets.stdout.startswith("场所 新浦农贸市场 (M7, 海州区)")
    nowhere = cw(projected, "venue", "墟沟", "--district", "320706")
    assert nowhere.returncode == 1 and "未找到场所 墟沟" in nowhere.stderr


async def test_venues_through_a_pipe_as_json_and_on_a_terminal(projected: dict[str, str]) -> None:
    piped = cw(projected, "venues")
    assert piped.returncode == 0, piped.stderr
    lines = piped.stdout.splitlines()
    assert lines[0].split("\t") == [
        "区", "场所编号", "场所名称", "场所类型", "街道", "第一责任人", "第一责任人电话",
        "责任干部", "责任干部电话",
    ]  # fmt: skip
    assert [line.split("\t")[:4] for line in lines[1:]] == [
        ["连云区", "LY-FM-001", "墟沟农贸市场", "农贸市场"],
        ["连云区", "LY-FM-002", "墟沟东农贸市场", "农贸市场"],
        ["连云区", "LY-MS-003", "苏宁广场超市", "大型商场超市"],
        ["海州区", "M7", "新浦农贸市场", "农贸市场"],
    ]
    assert lines[1].split("\t")[4:7] == ["墟沟街道", "王建国", "13800000000"]
    one = cw(projected, "venues", "--district", "320706")
    assert [line.split("\t")[1] for line in one.stdout.splitlines()[1:]] == ["M7"]
    by_name = cw(projected, "venues", "--district", "海州区")
    assert by_name.returncode == 0 and by_name.stdout == one.stdout
    none = cw(projected, "venues", "--district", "999999")
    assert none.returncode == 1 and "999999" in none.stderr
    doc = json.loads(cw(projected, "venues", "--json").stdout)
    assert doc["venues"][2] == {
        "district": "320703", "district_name": "连云区", "venue_id": "LY-MS-003",
        "name": "苏宁广场超市",
        "kind": "mall_supermarket", "street": None,
        "first_responsible": {"name": "王建国", "phone": "13800000000"}, "officer": None,
    }  # fmt: skip
    code, text = on_a_terminal(projected, "venues", columns=80)
    assert code == 0, text
    plain = re.sub(r"\x1b\[[0-9;]*m", "", text)
    assert max(cell_len(line) for line in plain.splitlines()) <= 80
    assert "苏宁广场超市" in plain and "\t" not in plain
