"""Valid events the read model refuses or cannot store: each becomes a dead letter with its
reason, is recorded as such, and never holds up the events behind it."""

from __future__ import annotations

import pytest

from services.common.deadletters import ISSUE_VENUE, DeadLetter
from services.common.streams import DEAD_LETTERS_STREAM
from services.projector.adapters.metrics import ProjectorMetrics
from tests import factories as f
from tests.integration.conftest import Harness, audits_clean

pytestmark = pytest.mark.integration


async def dead_letters(harness: Harness) -> list[DeadLetter]:
    js = harness.nc.jetstream()
    info = await js.stream_info(DEAD_LETTERS_STREAM)
    letters = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        m = await js.get_msg(DEAD_LETTERS_STREAM, seq)
        letters.append(DeadLetter.from_message(seq, m.subject or "", m.data or b"", m.headers))
    return letters


async def outcomes(harness: Harness) -> dict[int, tuple[str, str | None]]:
    schema = await harness.db.fetchval("SELECT active_schema FROM cw.read_model_head")
    rows = await harness.rows(f"SELECT stream_seq, outcome, reason FROM {schema}.stream_outcomes")
    return {int(str(r["stream_seq"])): (str(r["outcome"]), r["reason"]) for r in rows}  # type: ignore[misc]


async def test_a_recheck_under_another_venue_does_not_close_the_issue(harness: Harness) -> None:
    await harness.publish([
        f.issue("PV-1", "I1", f.at("2023-03-01 10:00")),
        f.recheck_passed("EVIL", "I1", f.at("2023-03-02 10:00")),  # same district, other venue
        f.recheck_failed("EVIL", "I2", f.at("2023-03-02 10:00")),  # waits for its issue...
        f.issue("PV-2", "I2", f.at("2023-03-01 09:00")),           # ...which is at PV-2
        f.recheck_failed("PV-1", "I1", f.at("2023-03-03 10:00")),
    ])  # fmt: skip
    await harness.project()
    status = {
        r["issue_id"]: (r["status"], r["recheck_failures"])
        for r in await harness.rows("SELECT * FROM issue_status")
    }
    assert status == {"I1": ("open", 1), "I2": ("open", 0)}
    letters = await dead_letters(harness)
    found = [(d.kind, d.original_stream_seq, d.headers.get(ISSUE_VENUE)) for d in letters]
    assert found == [("venue_mismatch", 2, "PV-1"), ("venue_mismatch", 3, "PV-2")]
    assert letters[0].field == "venue_id"
    assert "issue I1 belongs to venue PV-1, not EVIL" in letters[0].reason
    archived = await harness.rows("SELECT stream_seq FROM event_archive ORDER BY stream_seq")
    assert [r["stream_seq"] for r in archived] == [1, 4, 5]
    assert await outcomes(harness) == {
        2: ("dead_lettered", "venue_mismatch"),
        3: ("dead_lettered", "venue_mismatch"),
    }
    await audits_clean(harness.settings)


async def test_an_event_id_reused_for_other_content_is_a_dead_letter(harness: Harness) -> None:
    first = f.issue("PV-1", "I1", f.at("2023-03-01 10:00"))
    again = f.issue("PV-1", "I1", f.at("2023-03-01 10:00"), event_id=first.event_id)
    changed = f.issue("PV-1", "I7", f.at("2023-03-04 10:00"), event_id=first.event_id)
    await harness.publish([first])
    await harness.project()
    # Republished long after the duplicate window (no Nats-Msg-Id stands in for that).
    await harness.publish([again, changed], msg_id=False)
    await harness.project()
    assert [r["issue_id"] for r in await harness.rows("SELECT issue_id FROM issue_status")] == [
        "I1"
    ]
    letters = await dead_letters(harness)
    assert [(d.kind, d.field, d.original_stream_seq) for d in letters] == [
        ("event_id_reused", "event_id", 3)
    ]
    assert await outcomes(harness) == {
        2: ("duplicate", None),
        3: ("dead_lettered", "event_id_reused"),
    }


async def test_an_event_the_store_cannot_hold_is_found_and_dead_lettered(harness: Harness) -> None:
    # The contract keeps out what PostgreSQL cannot hold; a store-side rule stands in here for
    # whatever slips through one day (a data error, SQLSTATE class 22, on one event only).
    schema = await harness.db.fetchval("SELECT active_schema FROM cw.read_model_head")
    await harness.db.execute(f"""
        CREATE FUNCTION {schema}.refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.venue_id = 'POISON' THEN
                RAISE EXCEPTION 'cannot hold this value' USING ERRCODE = '22023';
            END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER poison BEFORE INSERT ON {schema}.issues
            FOR EACH ROW EXECUTE FUNCTION {schema}.refuse_poison();
    """)  # fmt: skip
    events = [f.issue(f"PV-{i}", f"I{i}", f.at("2023-03-01 10:00")) for i in range(40)]
    events.insert(23, f.issue("POISON", "IP", f.at("2023-03-01 10:00"), district="320706"))
    await harness.publish(events)
    metrics = ProjectorMetrics()
    last = await harness.project(metrics)
    assert last == 41
    n = await harness.db.fetchval("SELECT count(*) FROM issue_status")
    assert n == 40
    letters = await dead_letters(harness)
    assert [(d.kind, d.original_stream_seq) for d in letters] == [("unstorable", 24)]
    assert "cannot hold this value" in letters[0].reason
    assert await outcomes(harness) == {24: ("dead_lettered", "unstorable")}
    archived = await harness.db.fetchval("SELECT count(*) FROM event_archive")
    assert archived == 40
    await audits_clean(harness.settings)
