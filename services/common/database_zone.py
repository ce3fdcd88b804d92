"""The database's ``TimeZone``: a plain session (psql, a report's query) renders the views'
``timestamptz`` columns in the campaign's zone, ``2023-02-13 08:45:00+08``.

The columns stay ``timestamptz`` (instants, which Grafana and programs compare); only their
text form follows the session's ``TimeZone``. Nothing in the services depends on it: asyncpg
reads ``timestamptz`` in binary, as instants, and no SQL of ours takes a date or an hour of the
session's zone.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

import asyncpg

CURRENT_DATABASE = "SELECT current_database()"
SET_DATABASE_ZONE = (
    "SELECT format('ALTER DATABASE %I SET timezone TO %L', current_database(), $1::text)"
)
"""Built with ``format`` because ``ALTER DATABASE`` takes no parameters."""
DATABASE_ZONE = """
SELECT (SELECT split_part(s, '=', 2) FROM unnest(d.setconfig) AS s
        WHERE lower(split_part(s, '=', 1)) = 'timezone') AS zone
FROM pg_db_role_setting d
WHERE d.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND d.setrole = 0
"""
ROLE_ZONES = """
SELECT r.rolname AS role, split_part(s, '=', 2) AS zone,
       d.setdatabase <> 0 AS in_this_database
FROM pg_db_role_setting d
JOIN pg_roles r ON r.oid = d.setrole
CROSS JOIN LATERAL unnest(d.setconfig) AS s
WHERE lower(split_part(s, '=', 1)) = 'timezone'
  AND d.setdatabase IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()))
ORDER BY r.rolname
"""
"""Roles with a ``TimeZone`` of their own: it wins over the database's in their sessions."""


async def ensure_database_zone(conn: asyncpg.Connection, zone: ZoneInfo) -> list[str]:
    """Set the connected database's ``TimeZone`` to ``zone`` (for sessions opened from now on);
    report it, and any role whose own setting overrides it. Never fails ``cw init``: a user that
    may not alter the database is told what to ask of its owner."""
    before = await conn.fetchval(DATABASE_ZONE)
    database = await conn.fetchval(CURRENT_DATABASE)
    if before == zone.key:
        report = [f"database {database}: TimeZone {zone.key}, left unchanged"]
    else:
        try:
            await conn.execute(await conn.fetchval(SET_DATABASE_ZONE, zone.key))
            was = before or "the server's default"
            report = [
                f"database {database}: TimeZone set to {zone.key} (was {was}); "
                "new sessions show times in it"
            ]
        except asyncpg.InsufficientPrivilegeError:
            report = [
                f"database {database}: TimeZone NOT set to {zone.key}: only its owner or a "
                f"superuser may; ask them to run: ALTER DATABASE {database} SET timezone TO "
                f"'{zone.key}'"
            ]
        except asyncpg.InvalidParameterValueError:
            report = [
                f"database {database}: TimeZone NOT set: PostgreSQL does not know the zone "
                f"{zone.key!r} of the campaign file"
            ]
    for row in await conn.fetch(ROLE_ZONES):
        if row["zone"] != zone.key:
            role, scope = row["role"], ""
            if row["in_this_database"]:
                scope = f" IN DATABASE {database}"
            report.append(
                f"role {role}: its own TimeZone {row['zone']} wins over the database's in its "
                f"sessions; ALTER ROLE {role}{scope} RESET timezone makes it follow the database"
            )
    return report
