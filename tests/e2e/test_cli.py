"""The ``cw`` command and the projector as real processes, the way an operator runs them."""

from __future__ import annotations

import asyncio
import re
import time
import urllib.request
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import asyncpg
import nats
import pytest

from contracts import encode_event
from services.common.streams import EVENTS_STREAM
from services.devstack.system import free_port
from tests import factories as f
from tests.support.processes import EXAMPLES, ProjectorProcess, cw
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e


@pytest.fixture
async def db(env: dict[str, str]) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(env["CW_DATABASE_URL"])
    yield conn
    await conn.close()


async def until(db: asyncpg.Connection, sql: str, expected: object, within: float = 60) -> None:
    value: object = None

    async def matches() -> bool:
        nonlocal value
        value = await _fetch(db, sql)
        return value == expected

    await eventually(
        matches, within=within, what=lambda: f"{sql!r} gave {value!r}, expected {expected!r}"
    )


async def _fetch(db: asyncpg.Connection, sql: str) -> object:
    """``sql``'s value; ``None`` while the projector has not created the read model yet."""
    try:
        return await db.fetchval(sql)
    except asyncpg.UndefinedTableError:
        return None


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        body: bytes = response.read()
    return body.decode()


def example_counts() -> dict[str, int]:
    counts: dict[str, int] = {}
    for line in EXAMPLES.read_text(encoding="utf-8").splitlines():
        if line.strip():
            event_type = line.split('"event_type":', 1)[1].split('"')[1]
            counts[event_type] = counts.get(event_type, 0) + 1
    return counts


async def test_init_publish_project_and_inspect(
    env: dict[str, str], projector: ProjectorProcess, db: asyncpg.Connection
) -> None:
    first = cw(env, "init")
    assert first.returncode == 0, first.stderr
    assert "stream CW_EVENTS: created" in first.stdout
    assert "created generation 1" in first.stdout
    again = cw(env, "init")
    assert "stream CW_EVENTS: exists, left unchanged" in again.stdout
    assert "live generation 1" in again.stdout

    projector.start()
    published = cw(env, "publish", str(EXAMPLES))
    assert published.returncode == 0, published.stdout + published.stderr
    counts = example_counts()
    total = sum(counts.values())
    assert f"{total} events sent: {total} new, 0 already held; 0 lines rejected" in (
        published.stdout
    )
    await until(db, "SELECT count(*) FROM event_archive", total)
    await until(db, "SELECT count(*) FROM issue_status", counts["IssueFound"])
    assert await db.fetchval("SELECT count(*) FROM venues") == counts["VenueRegistered"]
    inspections = await db.fetchval("SELECT sum(inspections) FROM venue_phase_summary")
    assert inspections == counts["InspectionRecorded"]
    assert await db.fetchval("SELECT sum(rebounds) FROM phase_summary") >= 1
    assert await db.fetchval("SELECT count(*) FROM issue_status WHERE status = 'overdue'") >= 1

    twice = cw(env, "publish", str(EXAMPLES))
    assert twice.returncode == 0
    assert twice.stdout.splitlines()[:2] == [
        f"{total} events sent: 0 new, {total} already held; 0 lines rejected",
        f"  {total} already in CW_EVENTS: sent again within its 5m duplicate window, so NATS "
        "stored no second copy",
    ]
    nc = await nats.connect(env["CW_NATS_URL"])
    info = await nc.jetstream().stream_info(EVENTS_STREAM)
    await nc.close()
    assert info.state.messages == total

    metrics = await asyncio.to_thread(scrape, f"http://127.0.0.1:{env['CW_METRICS_PORT']}/metrics")
    assert 'cw_projector_events_applied_total{event_type="IssueFound"}' in metrics
    # The writer serves the bureau's numbers, and they add up to the views' own.
    issues = [line for line in metrics.splitlines() if line.startswith("cw_issues{")]
    assert sum(float(line.rsplit(" ", 1)[1]) for line in issues) == counts["IssueFound"]
    assert 'cw_venues{district="320703",venue_kind="farmers_market"}' in metrics
    assert "LY-" not in metrics, "a venue id leaked into a metric label"
    assert "\ncw_unknown_item_codes 0.0\n" in metrics  # the examples use the checklist's codes

    venue = await db.fetchval("SELECT venue_id FROM issue_status ORDER BY found_at LIMIT 1")
    shown = cw(env, "venue", venue, "--as-of", "2030-01-01T00:00+08:00")
    assert shown.returncode == 0 and venue in shown.stdout
    assert projector.stop() == 0


async def test_publishing_again_after_the_duplicate_window_says_the_read_model_held_them(
    env: dict[str, str], projector: ProjectorProcess, db: asyncpg.Connection
) -> None:
    window = 1.0
    assert cw({**env, "CW_EVENTS_DUPLICATE_WINDOW": f"{window:g}s"}, "init").returncode == 0
    total = sum(example_counts().values())
    projector.start()
    first = cw(env, "publish", str(EXAMPLES))
    assert first.returncode == 0, first.stdout + first.stderr
    await until(db, "SELECT count(*) FROM event_archive", total)

    async def after_the_window() -> None:
        # The window is a span of time, so its end is the condition waited for.
        since = time.monotonic()

        async def passed() -> bool:
            return time.monotonic() > since + 2 * window

        await eventually(passed, within=30, what="the 1s duplicate window passes")

    await after_the_window()
    again = cw(env, "publish", str(EXAMPLES))

    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.splitlines() == [
        f"{total} events sent: 0 new, {total} already held; 0 lines rejected",
        f"  {total} already in the read model: sent again after CW_EVENTS's 1s duplicate "
        "window, so stored there again; the projector skips them by event_id, nothing is "
        "doubled",
    ]
    nc = await nats.connect(env["CW_NATS_URL"])
    info = await nc.jetstream().stream_info(EVENTS_STREAM)
    await nc.close()
    assert info.state.messages == 2 * total  # NATS did store them again: the output said so
    await until(db, "SELECT max(stream_seq) FROM cw_rm_1.checkpoint", 2 * total)
    assert await db.fetchval("SELECT count(*) FROM event_archive") == total
    audited = cw(env, "audit")
    assert audited.returncode == 0, audited.stdout + audited.stderr
    assert f"duplicates     {total}" in audited.stdout
    assert projector.stop() == 0

    # Without the read model, the events are still published, and the summary says what
    # "new" can then not know.
    await after_the_window()
    away = cw({**env, "CW_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/x"}, "publish",
              str(EXAMPLES))  # fmt: skip
    assert away.returncode == 0, away.stdout + away.stderr
    lines = away.stdout.splitlines()
    assert lines[0] == f"{total} events sent: {total} new, 0 already held; 0 lines rejected"
    assert lines[1].startswith("  note: the read model was not asked (cannot reach PostgreSQL")
    assert lines[1].endswith(
        "so new means not seen within CW_EVENTS's 1s duplicate window; an event sent before "
        "that is only recognised by the projector, which skips it by event_id"
    )


async def test_kill_9_in_the_middle_of_a_backlog_loses_and_doubles_nothing(
    env: dict[str, str], projector: ProjectorProcess, db: asyncpg.Connection, tmp_path: Path
) -> None:
    assert cw(env, "init").returncode == 0
    n = 20_000
    start = f.at("2023-03-01 09:00")
    backlog = tmp_path / "backlog.jsonl"
    with backlog.open("wb") as out:
        for i in range(n):
            event = f.issue(f"V{i % 97}", f"I{i}", start + timedelta(minutes=i))
            out.write(encode_event(event) + b"\n")
    assert cw(env, "publish", str(backlog)).returncode == 0

    projector.start()

    async def started() -> int | None:
        done = await _fetch(db, "SELECT count(*) FROM issue_status")
        assert done is None or isinstance(done, int)
        return done if done is not None and done >= n // 10 else None

    done = await eventually(started, within=60, what="the projector starts")
    projector.kill()
    assert done < n, "the backlog was drained before the kill: make it larger"
    projector.start()
    await until(db, "SELECT count(*) FROM issue_status", n)
    await until(db, "SELECT sum(issues_found) FROM venue_phase_summary", n)
    assert await db.fetchval("SELECT count(*) FROM event_archive") == n
    assert projector.stop() == 0
    audited = cw(env, "audit")
    assert audited.returncode == 0, audited.stdout + audited.stderr


async def test_rebuild_from_the_command_line_gives_the_same_views(
    env: dict[str, str], projector: ProjectorProcess, db: asyncpg.Connection
) -> None:
    assert cw(env, "init").returncode == 0
    projector.start()
    assert cw(env, "publish", str(EXAMPLES)).returncode == 0
    total = sum(example_counts().values())
    await until(db, "SELECT count(*) FROM event_archive", total)
    query = "SELECT * FROM venue_phase_summary ORDER BY district, venue_id, phase"
    before = [dict(r) for r in await db.fetch(query)]
    rebuilt = cw(env, "rebuild")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "generation 2 is live" in rebuilt.stdout
    assert [dict(r) for r in await db.fetch(query)] == before
    assert projector.stop() == 0
    # The service's log lines are stamped on the campaign's clock, with the offset.
    stamped = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \+08:00 (INFO|WARNING|ERROR) cw")
    logged = [line for line in projector.log.read_text().splitlines() if " cw." in line]
    assert logged and all(stamped.match(line) for line in logged), logged[:3]


def test_init_says_in_one_line_when_nats_cannot_be_reached(env: dict[str, str]) -> None:
    url = f"nats://operator:s3cret@127.0.0.1:{free_port()}"  # nothing listens there
    done = cw({**env, "CW_NATS_URL": url}, "init")
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.splitlines()
    masked = url.replace("s3cret", "***")
    assert line.startswith(f"cw init: cannot reach NATS at {masked} (")
    assert "refused" in line.lower()
    assert line.endswith("is it running, and is CW_NATS_URL right?")
    assert "s3cret" not in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_init_says_in_one_line_when_postgresql_cannot_be_reached(env: dict[str, str]) -> None:
    url = f"postgresql://postgres:s3cret@127.0.0.1:{free_port()}/chuangwei"
    done = cw({**env, "CW_DATABASE_URL": url}, "init")
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.splitlines()
    masked = url.replace("s3cret", "***")
    assert line.startswith(f"cw init: cannot reach PostgreSQL at {masked} (")
    assert line.endswith("is it running, and is CW_DATABASE_URL right?")
    assert "s3cret" not in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
