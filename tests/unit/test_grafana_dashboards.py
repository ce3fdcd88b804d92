"""The Grafana provisioning holds together: every panel's data source is a provisioned one, panel
ids are unique, dashboards show the campaign's local time, and the PostgreSQL data source is the
read-only role. (The queries themselves run in tests/e2e/test_prometheus.py.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tests.support import dashboards

pytestmark = pytest.mark.unit

GRAFANA = Path(__file__).resolve().parents[2] / "deploy" / "grafana"


def test_panels_use_the_provisioned_data_sources() -> None:
    provisioned = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "chuangwei.yml").read_text(encoding="utf-8")
    )["datasources"]
    uids = {d["uid"]: d for d in provisioned}
    assert uids["cw-views"]["user"] == "cw_reader"
    assert uids["cw-views"]["secureJsonData"]["password"] == "${CW_READER_PASSWORD}"
    boards = dashboards.dashboards()
    assert boards, "no dashboards"
    for name, board in boards.items():
        assert board["timezone"] == "Asia/Shanghai", name
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), f"{name}: panel ids repeat"
        for panel in board["panels"]:
            assert panel["datasource"]["uid"] in uids, f"{name}: {panel['title']}"
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == panel["datasource"]["uid"]
    assert len({b["uid"] for b in boards.values()}) == len(boards), "dashboard uids repeat"


def test_no_panel_groups_by_a_venue_issue_or_person() -> None:
    for where, expr in dashboards.promql():
        for label in ("venue_id", "issue_id", "order_no", "phone", "name"):
            assert label not in expr, f"{where}: {expr}"


def test_titles_say_it_in_chinese_first_then_in_english() -> None:
    for name, board in dashboards.dashboards().items():
        for title in [board["title"], *(p["title"] for p in board["panels"])]:
            assert re.match(r"^[\u4e00-\u9fff].* \([A-Za-z].*\)$", title), f"{name}: {title}"
