"""``cw init``: creates what is missing, and never changes what an operator tuned."""

from __future__ import annotations

from dataclasses import replace

import asyncpg
import nats
import pytest
from nats.js.api import StorageType

from services.common.entrypoints import initialise
from services.common.migrations import migration_files
from services.common.settings import Settings
from services.common.streams import (
    DEAD_LETTER_HEADROOM,
    DEAD_LETTERS_STREAM,
    EVENTS_MAX_MSG_SIZE,
    EVENTS_STREAM,
    REMINDERS_STREAM,
    stream_plans,
)

pytestmark = pytest.mark.integration


async def test_init_creates_the_streams_as_the_contract_says(settings: Settings) -> None:
    await initialise(settings)
    nc = await nats.connect(settings.nats_url)
    try:
        js = nc.jetstream()
        events = (await js.stream_info(EVENTS_STREAM)).config
        assert events.subjects == ["cw.events.>"]
        assert events.storage == StorageType.FILE
        assert events.max_age in (0, None)
        assert (events.duplicate_window or 0) >= 120
        assert events.max_msg_size == EVENTS_MAX_MSG_SIZE  # room for dead-letter headers
        assert (await js.stream_info(REMINDERS_STREAM)).config.subjects == ["cw.reminders.>"]
        assert (await js.stream_info(DEAD_LETTERS_STREAM)).config.subjects == ["cw.dlq.>"]
    finally:
        await nc.close()


async def test_init_again_keeps_an_operators_stream_settings(settings: Settings) -> None:
    await initialise(settings)
    nc = await nats.connect(settings.nats_url)
    try:
        js = nc.jetstream()
        tuned = (await js.stream_info(EVENTS_STREAM)).config
        tuned.duplicate_window = 3600.0
        tuned.max_msgs_per_subject = 100_000
        await js.update_stream(tuned)
        report = await initialise(settings)
        kept = (await js.stream_info(EVENTS_STREAM)).config
    finally:
        await nc.close()
    assert (kept.duplicate_window, kept.max_msgs_per_subject) == (3600.0, 100_000)
    line = next(r for r in report if r.startswith(f"stream {EVENTS_STREAM}"))
    assert "left unchanged" in line and "duplicate_window" in line


async def test_init_again_changes_nothing_in_the_database(settings: Settings) -> None:
    first = await initialise(settings)
    second = await initialise(settings)
    assert any("created generation 1" in line for line in first)
    assert any("live generation 1" in line for line in second)
    assert not any("migration" in line for line in second)
    conn = await asyncpg.connect(settings.database_url)
    try:
        applied = await conn.fetchval("SELECT count(*) FROM cw.schema_migrations")
        assert applied == len(migration_files())
        assert await conn.fetchval("SELECT count(*) FROM issue_status") == 0
    finally:
        await conn.close()


@pytest.mark.parametrize("size", [1024 * 1024, -1])
async def test_init_lowers_max_msg_size_so_that_dead_letters_fit_and_keeps_the_rest(
    settings: Settings, size: int
) -> None:
    assert EVENTS_MAX_MSG_SIZE == 1024 * 1024 - DEAD_LETTER_HEADROOM == 1_032_192
    nc = await nats.connect(settings.nats_url)
    try:
        js = nc.jetstream()
        plan = next(p for p in stream_plans() if p.config.name == EVENTS_STREAM)
        await js.add_stream(replace(plan.config, max_msg_size=size, duplicate_window=3600.0))

        first = await initialise(settings)
        after_first = (await js.stream_info(EVENTS_STREAM)).config
        second = await initialise(settings)
        after_second = (await js.stream_info(EVENTS_STREAM)).config
    finally:
        await nc.close()

    assert after_first.max_msg_size == EVENTS_MAX_MSG_SIZE
    assert after_first.duplicate_window == 3600.0  # the operator's choice is kept
    was = "1048576" if size > 0 else "unlimited (-1)"
    line = next(r for r in first if r.startswith(f"stream {EVENTS_STREAM}"))
    assert line == (
        f"stream {EVENTS_STREAM}: max_msg_size lowered from {was} to 1032192 so that every "
        "dead letter fits; differs from the default in duplicate_window (kept)"
    )
    # A second init changes nothing.
    assert after_second == after_first
    line = next(r for r in second if r.startswith(f"stream {EVENTS_STREAM}"))
    assert line == (
        f"stream {EVENTS_STREAM}: exists, left unchanged; differs from the default in "
        "duplicate_window (kept)"
    )


async def test_a_smaller_max_msg_size_an_operator_chose_is_kept(settings: Settings) -> None:
    nc = await nats.connect(settings.nats_url)
    try:
        js = nc.jetstream()
        plan = next(p for p in stream_plans() if p.config.name == EVENTS_STREAM)
        await js.add_stream(replace(plan.config, max_msg_size=128 * 1024))
        report = await initialise(settings)
        kept = (await js.stream_info(EVENTS_STREAM)).config
    finally:
        await nc.close()
    assert kept.max_msg_size == 128 * 1024
    assert f"stream {EVENTS_STREAM}: exists, left unchanged" in report
