"""A district the campaign file does not list, from its first event to its dead letters replayed
once the file names it: against real NATS and PostgreSQL, with the real projector, reminders
service and ``cw dlq replay``, ``cw audit`` clean at every step."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from rich.console import Console

from services.common.campaign import DEFAULT_CAMPAIGN, load_campaign
from services.common.settings import Settings
from services.deadletters.adapters.jetstream import DeadLetterStore
from services.deadletters.entrypoints.cli import replay_command, show_command
from services.reminders.adapters.metrics import ReminderMetrics
from tests import factories as f
from tests.integration.conftest import Harness, audits_clean
from tests.integration.test_projector_refusals import outcomes
from tests.support.reminders import reminders_in_process
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

SHIPPED = (
    Path(__file__).resolve().parents[2] / "services" / "common" / "campaigns" / DEFAULT_CAMPAIGN
)
REMINDERS_CHECKPOINT = "SELECT COALESCE(max(stream_seq), 0) FROM cw_reminders.checkpoint"
HAIZHOU = '    { code = "320706", name = "海州区" },\n'


def campaign_with(folder: Path, *lines: str) -> Path:
    """The shipped campaign, covering only the districts of ``lines``."""
    text = SHIPPED.read_text("utf-8")
    text = re.sub(r"(?ms)^districts = \[\n.*?^\]\n", "districts = [\n" + "".join(lines) + "]\n",
                  text)  # fmt: skip
    path = folder / "campaign.toml"
    path.write_text(text, encoding="utf-8")
    return path


async def replay(settings: Settings, seqs: list[int]) -> tuple[int, str]:
    """``cw dlq replay`` as the command runs it: with the campaign file's districts."""
    out = io.StringIO()
    code = await replay_command(
        settings.nats_url, settings.database_url, seqs, fixed=None,
        console=Console(file=out, width=400),
        names=load_campaign(settings.campaign_file).names,
    )  # fmt: skip
    return code, out.getvalue()


async def reminders_catch_up(h: Harness) -> list[str]:
    """Run the reminders service until it has read the whole stream; the districts it holds."""
    last = await h.last_seq()

    async def caught_up() -> bool:
        return int(await h.db.fetchval(REMINDERS_CHECKPOINT)) >= last

    async with reminders_in_process(h.settings, ReminderMetrics()) as task:
        await eventually(caught_up, within=60, what="the reminders reach the end", running=[task])
    rows = await h.db.fetch("SELECT DISTINCT district FROM cw_reminders.issues ORDER BY 1")
    return [r["district"] for r in rows]


async def test_an_unknown_district_is_dead_lettered_then_replayed_once_the_campaign_names_it(
    harness: Harness, tmp_path: Path
) -> None:
    h = harness
    lianyun = '    { code = "320703", name = "连云区" },\n'
    h.settings = h.settings.model_copy(update={"campaign_file": campaign_with(tmp_path, lianyun)})
    await h.publish([
        f.venue("LY-FM-001", f.at("2023-03-01 09:00")),
        f.issue("LY-FM-001", "I1", f.at("2023-03-01 10:00")),
        f.venue("HZ-FM-001", f.at("2023-03-01 09:00"), district="320706"),
        f.issue("HZ-FM-001", "I1", f.at("2023-03-01 10:00"), item_code="FM-SCALE",
                district="320706"),
    ])  # fmt: skip
    await h.project()

    letters = await DeadLetterStore(h.nc.jetstream()).list(stage="projector", limit=10)
    assert [(d.original_stream_seq, d.kind, d.field) for d in letters] == [
        (3, "unknown_district", "district"),
        (4, "unknown_district", "district"),
    ]
    assert "district 320706 is not one of the campaign's districts" in letters[0].reason
    assert await outcomes(h) == {
        3: ("dead_lettered", "unknown_district"),
        4: ("dead_lettered", "unknown_district"),
    }
    # No phantom district: the reports read the views, and the views have only 连云区.
    districts = await h.rows("SELECT DISTINCT district FROM venue_phase_summary")
    assert districts == [{"district": "320703"}]
    await audits_clean(h.settings)
    # The reminders service passes them by too (the projector owns the dead letter).
    assert await reminders_catch_up(h) == ["320703"]

    out = io.StringIO()
    shown = await show_command(h.settings.nats_url, letters[0].seq,
                               console=Console(file=out, width=400),
                               names=load_campaign(h.settings.campaign_file).names)  # fmt: skip
    assert shown == 0
    assert "valid, but district 320706 is not one of the campaign's districts" in out.getvalue()

    # Replayed while the campaign still does not list it: kept, with what to do.
    code, said = await replay(h.settings, [d.seq for d in letters])
    assert code == 1
    assert "kept: district 320706 is not one of the campaign's districts" in said
    assert "add its line to the campaign file's districts" in said

    # The district's line is added, the services restarted (each run reads the file anew).
    campaign_with(tmp_path, lianyun, HAIZHOU)
    code, said = await replay(h.settings, [d.seq for d in letters])
    assert code == 0, said
    assert said.count("published to CW_EVENTS") == 2
    await h.project()

    issues = await h.rows("SELECT district, issue_id, item_code FROM issue_status ORDER BY 1")
    assert issues == [
        {"district": "320703", "issue_id": "I1", "item_code": "FM-3F"},
        {"district": "320706", "issue_id": "I1", "item_code": "FM-SCALE"},
    ]
    venues = await h.rows("SELECT district, venue_id FROM venues ORDER BY 1")
    assert [v["district"] for v in venues] == ["320703", "320706"]
    assert await DeadLetterStore(h.nc.jetstream()).list(stage="projector", limit=10) == []
    await audits_clean(h.settings)
    assert await reminders_catch_up(h) == ["320703", "320706"]
