"""Numbered SQL migrations for the ``cw`` schema, applied once each, under a lock."""

from __future__ import annotations

import re
from importlib import resources

import asyncpg

MIGRATIONS_LOCK = 0x63775F6D  # pg advisory lock key: concurrent `cw init`s take turns
_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")

ENSURE_TABLE = """
CREATE SCHEMA IF NOT EXISTS cw;
CREATE TABLE IF NOT EXISTS cw.schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
"""
APPLIED = "SELECT version FROM cw.schema_migrations"
RECORD = "INSERT INTO cw.schema_migrations (version, name) VALUES ($1, $2)"


def migration_files() -> list[tuple[int, str, str]]:
    folder = resources.files("services.common") / "migrations"
    out = []
    for entry in folder.iterdir():
        m = _NAME.match(entry.name)
        if m:
            out.append((int(m.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    return sorted(out)


async def migrate(conn: asyncpg.Connection) -> list[str]:
    """Apply the migrations this database has not seen; return what was applied."""
    done: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATIONS_LOCK)
        await conn.execute(ENSURE_TABLE)
        applied = {r["version"] for r in await conn.fetch(APPLIED)}
        for version, name, sql in migration_files():
            if version in applied:
                continue
            await conn.execute(sql)
            await conn.execute(RECORD, version, name)
            done.append(f"migration {name}: applied")
    return done
