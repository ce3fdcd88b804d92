"""The generations of the read model: their schema, and their lifecycle.

Each generation is a schema ``cw_rm_<n>``; the public views (the operators' contract) point at the
live one, and ``cw.read_model_head`` names it. The DDL and the views are ``.sql`` files beside
this module (``sql/``), templates over the schema name ``{s}``; the statements that move the head
are named constants here, next to the code that runs them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime, time
from importlib.resources import files
from typing import TypeAlias
from uuid import UUID

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from services.common.campaign import Campaign

Conn: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"

PROJECTION = "projector"
READ_MODEL_LOCK = 0x63775F72  # shared by live batches, exclusive for the swap of a rebuild
_SCHEMA = re.compile(r"^cw_rm_[0-9]+$")


def _sql_file(name: str) -> str:
    """A statement shipped as ``sql/<name>`` (package data, so a non-editable install has it)."""
    return files(__package__).joinpath("sql", name).read_text(encoding="utf-8")


GENERATION_DDL = _sql_file("generation.sql")
GENERATION_UPGRADE = _sql_file("generation_upgrade.sql")
PUBLIC_VIEWS = _sql_file("public_views.sql")

HEAD = "SELECT active_schema, generation FROM cw.read_model_head WHERE projection = $1"
INSERT_HEAD = (
    "INSERT INTO cw.read_model_head (projection, active_schema, generation) VALUES ($1, $2, $3)"
)
MOVE_HEAD = (
    "UPDATE cw.read_model_head SET active_schema = $2, generation = $3, activated_at = now() "
    "WHERE projection = $1"
)
NEXT_GENERATION = (
    "SELECT COALESCE(max(substring(nspname FROM 7)::integer), 0) + 1 FROM pg_namespace "
    "WHERE nspname ~ '^cw_rm_[0-9]+$'"
)
LOCK_SHARED = "SELECT pg_advisory_xact_lock_shared($1)"
LOCK_EXCLUSIVE = "SELECT pg_advisory_xact_lock($1)"
DROP_GENERATION = "DROP SCHEMA IF EXISTS {s} CASCADE"


def check_schema(schema: str) -> str:
    """Schema names are interpolated into SQL: only ``cw_rm_<n>`` is ever accepted."""
    if not _SCHEMA.match(schema):
        raise ValueError(f"not a read-model schema: {schema!r}")
    return schema


async def active_schema(conn: Conn, projection: str = PROJECTION) -> str:
    row = await conn.fetchrow(HEAD, projection)
    if row is None:
        raise LookupError("the read model is not initialised: run `cw init` first")
    return check_schema(row["active_schema"])


async def create_generation(conn: Conn) -> tuple[str, int]:
    """Create the next empty generation schema; it is not live until ``activate``."""
    generation = int(await conn.fetchval(NEXT_GENERATION))
    schema = check_schema(f"cw_rm_{generation}")
    await conn.execute(GENERATION_DDL.replace("{s}", schema))
    return schema, generation


# The id of the message at ``through`` is the one the new generation's own checkpoint recorded.
CARRY_CHECKPOINTS = """
INSERT INTO {new}.checkpoint (projection, partition, stream_seq, message_id)
SELECT projection, partition, $1,
       (SELECT n.message_id FROM {new}.checkpoint n
        WHERE n.stream_seq = $1 AND n.message_id IS NOT NULL LIMIT 1)
FROM {old}.checkpoint
ON CONFLICT (projection, partition) DO UPDATE
SET stream_seq = EXCLUDED.stream_seq, message_id = EXCLUDED.message_id
"""


async def carry_checkpoints(conn: Conn, old: str, new: str, through: int) -> None:
    """At a rebuild's swap: every consumer and partition of the old generation continues from
    ``through`` in the new one, which holds the whole stream up to there."""
    sql = CARRY_CHECKPOINTS.replace("{new}", check_schema(new)).replace("{old}", check_schema(old))
    await conn.execute(sql, through)


# What the live generation ({old}) holds and a new one ({new}) lacks, by event id: an anti-join
# on the archives' primary keys. Whole, it reads both archives (bench/audit_cost.py: about 1 s
# for 200,000 events on the shared VM); a rebuild runs it before the swap, live writers not held
# off (COMPARE: in the one snapshot of its statement, the live checkpoint too), and under the
# swap's lock only MISSING_SINCE: the events it found then, and those the live projectors archived
# since, beyond the checkpoint they had then (a few, through the indexes).
ANALYZE_ARCHIVE = "ANALYZE {s}.event_archive"
# The BRIN index covers only what a vacuum summarised: the rest it hands over whole, page by page.
SUMMARISE_SEQ_INDEX = (
    "SELECT brin_summarize_new_values(i) FROM to_regclass($1) AS i WHERE i IS NOT NULL"
)
COMPARE = """
SELECT (SELECT COALESCE(min(stream_seq), 0) FROM {old}.checkpoint),
       ARRAY(SELECT o.event_id FROM {old}.event_archive o
             WHERE NOT EXISTS (SELECT 1 FROM {new}.event_archive n WHERE n.event_id = o.event_id)
             LIMIT $1)
"""
MISSING_EVENTS = """
SELECT count(*), min(o.stream_seq), max(o.stream_seq) FROM {old}.event_archive o
WHERE NOT EXISTS (SELECT 1 FROM {new}.event_archive n WHERE n.event_id = o.event_id)
"""
# Two scans, not one with OR: a bitmap of both would be as lossy as the BRIN's, and read the
# whole archive again. Each of the few events is looked up in the new archive by its key (a
# lateral probe: never a hash of the whole new archive, whatever the statistics say).
MISSING_SINCE = """
SELECT count(*), min(o.stream_seq), max(o.stream_seq) FROM (
    SELECT event_id, stream_seq FROM {old}.event_archive WHERE stream_seq > $1
    UNION
    SELECT event_id, stream_seq FROM {old}.event_archive WHERE event_id = ANY($2::uuid[])
) AS o
LEFT JOIN LATERAL (
    SELECT true AS held FROM {new}.event_archive n WHERE n.event_id = o.event_id LIMIT 1
) AS n ON true
WHERE n.held IS NULL
"""
CANDIDATES_MAX = 10_000
"""More events missing than this before the swap: the swap compares the archives whole (a
rebuild from a stream that lost history, which it refuses)."""


def _two(template: str, old: str, new: str) -> str:
    return template.replace("{new}", check_schema(new)).replace("{old}", check_schema(old))


async def compare_archives(conn: Conn, old: str, new: str) -> tuple[int, list[UUID] | None]:
    """The lowest checkpoint of ``old`` and the events of its archive ``new``'s lacks (``None``:
    more than ``CANDIDATES_MAX``), in one snapshot. Both archives are analysed first (``new`` was
    just written, ``old`` grows) and ``old``'s BRIN index summarised: the swap's statement then
    reads the few rows beyond the checkpoint through it, not the whole archive."""
    for schema in (new, old):
        await conn.execute(ANALYZE_ARCHIVE.replace("{s}", check_schema(schema)))
    await conn.execute(SUMMARISE_SEQ_INDEX, f"{check_schema(old)}.event_archive_stream_seq")
    row = await conn.fetchrow(_two(COMPARE, old, new), CANDIDATES_MAX + 1)
    assert row is not None  # aggregates without GROUP BY answer one row
    ids = list(row[1])
    return int(row[0]), None if len(ids) > CANDIDATES_MAX else ids


async def missing_events(
    conn: Conn,
    old: str,
    new: str,
    *,
    since: int | None = None,
    candidates: Sequence[UUID] = (),
) -> tuple[int, int | None, int | None]:
    """How many events of ``old``'s archive ``new``'s lacks, and the first and last of their
    sequences in ``old``: all of them, or (``since``) among ``candidates`` and the events beyond
    sequence ``since``."""
    if since is None:
        row = await conn.fetchrow(_two(MISSING_EVENTS, old, new))
    else:
        row = await conn.fetchrow(_two(MISSING_SINCE, old, new), since, list(candidates))
    assert row is not None
    return int(row[0]), row[1], row[2]


async def activate(conn: Conn, schema: str, generation: int, projection: str = PROJECTION) -> None:
    """Point the public views and the head at ``schema``; call inside the swap transaction."""
    await conn.execute(PUBLIC_VIEWS.replace("{s}", check_schema(schema)))
    if await conn.fetchrow(HEAD, projection) is None:
        await conn.execute(INSERT_HEAD, projection, schema, generation)
    else:
        await conn.execute(MOVE_HEAD, projection, schema, generation)


async def ensure_read_model(conn: Conn, projection: str = PROJECTION) -> str:
    """Create the first generation and the views if there is none; report what happened."""
    async with conn.transaction():
        await conn.execute(LOCK_EXCLUSIVE, READ_MODEL_LOCK)
        row = await conn.fetchrow(HEAD, projection)
        if row is not None:
            schema = check_schema(row["active_schema"])
            await conn.execute(GENERATION_UPGRADE.replace("{s}", schema))
            # Views added since the generation was built appear without a rebuild; the existing
            # ones are replaced by themselves (CREATE OR REPLACE keeps their grants).
            await conn.execute(PUBLIC_VIEWS.replace("{s}", schema))
            return f"read model: live generation {row['generation']} ({schema})"
        schema, generation = await create_generation(conn)
        await activate(conn, schema, generation, projection)
        return f"read model: created generation {generation} ({schema}) and the public views"


CLEAR_PHASES = "DELETE FROM cw.campaign_phases"
RECORD_PHASES = """
INSERT INTO cw.campaign_phases (phase, title, starts_at, ends_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[])
"""


async def record_campaign_phases(conn: Conn, campaign: Campaign) -> str:
    """Write the campaign file's phases where the views read them (coverage): replaced whole,
    so a phase renamed or dropped in the file leaves no row behind."""

    def midnight(day: date | None) -> datetime | None:
        return None if day is None else datetime.combine(day, time.min, campaign.timezone)

    phases = campaign.phases
    async with conn.transaction():
        await conn.execute(CLEAR_PHASES)
        await conn.execute(
            RECORD_PHASES,
            [p.name for p in phases],
            [p.title for p in phases],
            [midnight(p.start) for p in phases],
            [midnight(p.end) for p in phases],
        )
    names = ", ".join(p.name for p in phases)
    return f"campaign phases: {names} (from {campaign.name})"


async def drop_generation(conn: Conn, schema: str) -> None:
    """Drop a generation that is not live (the one replaced by a rebuild, or a failed one)."""
    row = await conn.fetchrow(HEAD, PROJECTION)
    if row is not None and row["active_schema"] == schema:
        raise ValueError(f"{schema} is the live generation")
    await conn.execute(DROP_GENERATION.replace("{s}", check_schema(schema)))
