"""``cw audit`` and the projector's periodic audit against real NATS and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import subprocess
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest

from contracts import Event
from services.common.settings import Settings
from services.deadletters.adapters.jetstream import DeadLetterStore
from services.projector import bootstrap
from services.projector.adapters import audit as audit_adapter
from services.projector.adapters.metrics import ProjectorMetrics
from services.projector.domain.audit import DEAD_LETTER_GONE, NOT_ARCHIVED, OTHER_EVENTS_KIND
from tests import factories as f
from tests.integration.conftest import Harness
from tests.support.processes import cw, cw_env
from tests.support.replaced_streams import recreate_stream
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration
V = "LY-FM-001"
SUBJECT = f"cw.events.{f.DISTRICT}.{V}.IssueFound"


def cw_audit(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return cw(cw_env(settings.nats_url, settings.database_url), "audit", *args)


async def schema(harness: Harness) -> str:
    rows = await harness.rows("SELECT active_schema FROM cw.read_model_head")
    return str(rows[0]["active_schema"])


def cw_dlq(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return cw(cw_env(settings.nats_url, settings.database_url), "dlq", *args)


async def operator_acts(
    harness: Harness, original_seq: int, *args: str, fix: bytes | None = None
) -> None:
    """An operator's ``cw dlq replay|delete`` of the dead letter of ``original_seq``."""
    store = DeadLetterStore(harness.nc.jetstream())
    [letter] = [
        d
        for d in await store.list(stage="projector", limit=100)
        if d.original_stream_seq == original_seq
    ]
    if fix is not None:
        path = Path(tempfile.mkdtemp()) / "fixed.json"
        path.write_bytes(fix)
        args = (*args, "--file", str(path))
    done = cw_dlq(harness.settings, args[0], str(letter.seq), *args[1:])
    assert done.returncode == 0, done.stdout + done.stderr


async def drop_dead_letter(harness: Harness, original_seq: int) -> None:
    store = DeadLetterStore(harness.nc.jetstream())
    for d in await store.list(stage="projector", limit=100):
        if d.original_stream_seq == original_seq:
            assert await store.delete(d.seq)


async def healthy_history(harness: Harness) -> dict[str, int]:
    """Events, a duplicate, three dead letters (one kept, one replayed, one deleted), a gap."""
    venue = f.venue(V, f.at("2023-02-01 09:00"))
    found = f.issue(V, "I1", f.at("2023-03-01 10:00"))
    wrong = f.issue(V, "I2", f.at("2023-03-01 10:00"))
    naive = f.wire(wrong).replace(b"+08:00", b"")
    await harness.publish([venue, found])  # 1, 2
    await harness.publish([venue], msg_id=False)  # 3: a republish without Nats-Msg-Id
    await harness.publish_raw(SUBJECT, naive)  # 4: stays a dead letter
    await harness.publish_raw(SUBJECT, naive)  # 5: replayed by an operator (as 8)
    await harness.publish_raw(SUBJECT, b"{not json")  # 6: deleted by an operator
    await harness.publish([f.inspection(V, f.at("2023-03-02 10:00"))])  # 7
    await harness.project()
    await operator_acts(harness, 5, "replay", fix=f.wire(wrong))  # 8
    await operator_acts(harness, 6, "delete", "--reason", "not an event")
    await harness.publish([f.inspection(V, f.at("2023-03-03 10:00"))])  # 9
    await harness.project()
    await harness.nc.jetstream().delete_msg("CW_EVENTS", 9)  # a gap: not a message any more
    return {"checkpoint": 9}


async def test_a_healthy_history_audits_clean(harness: Harness) -> None:
    await healthy_history(harness)

    report = await bootstrap.audit(harness.settings)
    assert report.clean, report.unaccounted
    assert (report.first_seq, report.checkpoint, report.checked) == (1, 9, 8)
    assert (report.archived, report.duplicates, report.dead_lettered) == (4, 1, 3)
    assert (report.still_dead_letters, report.replayed, report.deleted) == (1, 1, 1)

    done = cw_audit(harness.settings)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "CW_EVENTS 1..9" in done.stdout and "8 messages checked" in done.stdout
    assert "1 still dead letters, 1 replayed, 1 deleted" in done.stdout
    assert "every message is accounted for" in done.stdout


async def test_small_pulls_read_the_same_messages(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    await healthy_history(harness)
    monkeypatch.setattr(audit_adapter, "PULL_BATCH", 2)  # many requests, some ending mid-range
    report = await bootstrap.audit(harness.settings)
    assert report.clean and report.checked == 8
    partial = await bootstrap.audit(harness.settings, since=4)
    assert (partial.first_seq, partial.checked, partial.archived) == (4, 5, 2)


async def test_lost_events_and_a_vanished_dead_letter_are_reported(harness: Harness) -> None:
    await healthy_history(harness)
    s = await schema(harness)
    await harness.db.execute(f"DELETE FROM {s}.event_archive WHERE stream_seq IN (1, 2, 7)")
    await drop_dead_letter(harness, 4)  # gone, and no operator action says why

    report = await bootstrap.audit(harness.settings)
    assert not report.clean
    assert [(u.seq, u.subject, u.reason) for u in report.unaccounted] == [
        (1, f"cw.events.{f.DISTRICT}.{V}.VenueRegistered", NOT_ARCHIVED),
        (2, SUBJECT, NOT_ARCHIVED),
        # the duplicate at 3 now names an event that is not in the archive
        (3, f"cw.events.{f.DISTRICT}.{V}.VenueRegistered", report.unaccounted[2].reason),
        (4, SUBJECT, DEAD_LETTER_GONE),
        (7, f"cw.events.{f.DISTRICT}.{V}.InspectionRecorded", NOT_ARCHIVED),
    ]
    assert report.unaccounted[2].reason.endswith("which is not in the archive")
    assert [(r.seqs, r.reason) for r in report.ranges()][:1] == [("1-2", NOT_ARCHIVED)]

    done = cw_audit(harness.settings)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "UNACCOUNTED FOR: 5 messages" in done.stdout
    assert f"seq 1-2 (2): {NOT_ARCHIVED}" in done.stdout
    assert f"seq 4 (1): {DEAD_LETTER_GONE}" in done.stdout

    done = cw_audit(harness.settings, "--since", "5", "--json")
    assert done.returncode == 1, done.stderr
    out = json.loads(done.stdout)
    assert (out["first_seq"], out["checkpoint"], out["clean"]) == (5, 9, False)
    assert [u["seq"] for u in out["unaccounted"]] == [7]


async def test_nothing_up_to_the_checkpoint_is_nothing_to_account_for(harness: Harness) -> None:
    report = await bootstrap.audit(harness.settings)
    assert report.clean and (report.checkpoint, report.checked) == (0, 0)


async def test_an_audit_that_cannot_read_says_so_with_status_2(settings: Settings) -> None:
    done = cw_audit(settings)  # no `cw init`: no streams, no read model
    assert done.returncode == 2
    assert done.stderr.startswith("cw audit: ") and "Traceback" not in done.stderr


async def test_the_projector_audits_itself_and_a_loss_shows_in_the_gauge(
    harness: Harness,
) -> None:
    settings = harness.settings.model_copy(
        update={"audit_every": timedelta(milliseconds=100), "audit_window": 3}
    )
    metrics = ProjectorMetrics()

    def value(name: str, **labels: str) -> float | None:
        return metrics.registry.get_sample_value(name, labels)

    await harness.publish([f.venue(V, f.at("2023-02-01 09:00"))])
    await harness.publish([f.inspection(V, f.at(f"2023-03-0{d} 10:00")) for d in range(1, 5)])
    stop = asyncio.Event()
    task = asyncio.create_task(bootstrap.run_projector(settings, metrics, stop))
    try:

        async def audited_through_5() -> bool:
            return (
                value("cw_projector_audit_checked_through_seq") == 5
                and (value("cw_projector_audits_total", result="clean") or 0) >= 1
            )

        await eventually(
            audited_through_5, within=30, what="an audit through sequence 5", running=[task]
        )
        assert value("cw_projector_unaccounted_events") == 0

        s = await schema(harness)
        # Sequence 1 is outside the window (3..5): the periodic audit does not look at it.
        await harness.db.execute(f"DELETE FROM {s}.event_archive WHERE stream_seq IN (1, 4)")

        async def one_unaccounted() -> bool:
            return value("cw_projector_unaccounted_events") == 1

        await eventually(
            one_unaccounted, within=30, what="the loss of sequence 4 in the gauge", running=[task]
        )
        assert (value("cw_projector_audits_total", result="unaccounted") or 0) >= 1
        assert not task.done()
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    assert value("cw_projector_audits_total", result="failed") in (None, 0)


def inspections(n: int, day: str = "2023-03-01") -> list[Event]:
    return [f.inspection(V, f.at(f"{day} 10:00") + timedelta(minutes=i)) for i in range(n)]


async def test_another_stream_of_that_name_is_said_first_and_its_messages_by_event_id(
    harness: Harness,
) -> None:
    ours = inspections(5)
    await harness.publish(ours)
    await harness.project()
    # CW_EVENTS recreated, and another server's events published into it: sequences 1-7 again.
    await recreate_stream(harness.nc, "CW_EVENTS")
    theirs = inspections(7, "2023-04-01")
    await harness.publish(theirs)

    report = await bootstrap.audit(harness.settings)
    assert not report.clean
    assert report.replaced == (
        "CW_EVENTS is not the stream the read model followed: its checkpoint is message "
        f"{ours[4].event_id} at sequence 5, but CW_EVENTS holds message {theirs[4].event_id} "
        "there (another stream of that name). Restore CW_EVENTS from its backup "
        "(docs/operations.md); only if this CW_EVENTS holds the whole history under new "
        "sequences, run `cw rebuild`"
    )
    assert (report.checked, report.archived) == (5, 0)
    assert [u.reason for u in report.unaccounted] == [
        f"the archive holds event {a.event_id} at sequence {seq}; CW_EVENTS holds event "
        f"{b.event_id} there"
        for seq, (a, b) in enumerate(zip(ours, theirs, strict=False), start=1)
    ]

    done = cw_audit(harness.settings)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == report.replaced
    assert lines[1] == "CW_EVENTS 1..5 (the projector's checkpoint): 5 messages checked"
    assert f"  seq 1-5 (5): {OTHER_EVENTS_KIND} (at 1: {report.unaccounted[0].reason})" in lines

    done = cw_audit(harness.settings, "--json")
    assert done.returncode == 1, done.stderr
    out = json.loads(done.stdout)
    assert (out["clean"], out["stream_replaced"]) == (False, report.replaced)


async def test_a_stream_restored_from_an_older_backup_is_not_the_one_followed(
    harness: Harness,
) -> None:
    ours = inspections(5)
    await harness.publish(ours)
    await harness.project()
    await recreate_stream(harness.nc, "CW_EVENTS")
    await harness.publish(ours[:3])  # the backup's three messages, as they were

    report = await bootstrap.audit(harness.settings)
    assert report.replaced is not None
    assert report.replaced.startswith(
        "CW_EVENTS is not the stream the read model followed: its checkpoint is message "
        f"{ours[4].event_id} at sequence 5, but CW_EVENTS ends at sequence 3 (a new stream, or "
        "one restored from an older backup). Restore CW_EVENTS"
    )
    # What it holds is accounted for; what it lost is not there to count: the first line says it.
    assert (report.checked, report.archived, report.unaccounted) == (3, 3, ())
    done = cw_audit(harness.settings)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.splitlines()[0] == report.replaced
    assert done.stdout.splitlines()[-1] == (
        "every message this CW_EVENTS holds there is accounted for, but it is another stream "
        "(first line)"
    )


async def test_a_message_is_accounted_for_by_its_event_id_not_its_sequence(
    harness: Harness,
) -> None:
    ours = inspections(5)
    await harness.publish(ours)
    await harness.project()
    # The same events again, the first two swapped: the checkpoint's message is where it was
    # (the stream may be the one followed), but sequences 1 and 2 hold each other's events.
    await recreate_stream(harness.nc, "CW_EVENTS")
    await harness.publish([ours[1], ours[0], *ours[2:]])

    report = await bootstrap.audit(harness.settings)
    assert report.replaced is None
    assert (report.checked, report.archived) == (5, 3)
    assert [(u.seq, u.reason) for u in report.unaccounted] == [
        (1, f"the archive holds event {ours[0].event_id} at sequence 1; CW_EVENTS holds event "
            f"{ours[1].event_id} there"),
        (2, f"the archive holds event {ours[1].event_id} at sequence 2; CW_EVENTS holds event "
            f"{ours[0].event_id} there"),
    ]  # fmt: skip
    assert cw_audit(harness.settings).returncode == 1
