"""The read-only role (``cw_reader``): the public views and nothing else.

Grafana's data source and reports log in as this role. ``cw db setup`` (an administrator)
creates it; ``cw init`` as the services' role, the views' owner, grants it the views. A
superuser's ``cw init`` does both, as before. It may read the views (the operators'
contract) and nothing behind them: no generation schema ``cw_rm_<n>``, no ``cw`` bookkeeping, no
write, no DDL, not even a temporary table. The views run with their owner's rights, so the role
needs no grant on the tables they read; a ``cw rebuild`` replaces the views with ``CREATE OR
REPLACE``, which keeps the grants, and a new generation's schema is never granted to anyone.
"""

from __future__ import annotations

import re

import asyncpg

from services.projector.adapters.generations import PUBLIC_VIEWS as PUBLIC_VIEWS_SQL

PUBLIC_VIEWS = tuple(re.findall(r"CREATE OR REPLACE VIEW public\.(\w+)", PUBLIC_VIEWS_SQL))
"""Every view of ``sql/public_views.sql``: what the role may read."""
PUBLIC_FUNCTIONS = tuple(re.findall(r"CREATE OR REPLACE FUNCTION public\.(\w+)", PUBLIC_VIEWS_SQL))
"""Every function of ``sql/public_views.sql`` (``days_overdue``): the views call them."""

ROLE_EXISTS = "SELECT 1 FROM pg_roles WHERE rolname = $1"
MAY_MANAGE_ROLES = "SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user"
QUOTE = "SELECT quote_ident($1) AS ident, quote_literal($2) AS literal, current_database() AS db"
# PUBLIC keeps CONNECT (other roles of the database need it) but loses what lets any role
# create objects: TEMPORARY on the database (PostgreSQL grants it to PUBLIC by default) and
# CREATE on schema public (revoked by default only from PostgreSQL 15 on).
REVOKE_FROM_PUBLIC = (
    "REVOKE TEMPORARY ON DATABASE {db} FROM PUBLIC",
    "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
)
GRANTS = (
    "GRANT CONNECT ON DATABASE {db} TO {role}",
    "GRANT USAGE ON SCHEMA public TO {role}",
)
GRANT_VIEW = "GRANT SELECT ON public.{view} TO {role}"
CREATE_ROLE = "CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {password}"
ALTER_ROLE = "ALTER ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {password}"
# A second line of defence should a grant ever be too wide: its sessions cannot write.
READ_ONLY_SESSIONS = "ALTER ROLE {role} IN DATABASE {db} SET default_transaction_read_only = on"


async def ensure_reader_role(conn: asyncpg.Connection, role: str, password: str | None) -> str:
    """Create or update ``role`` with ``password`` and grant it the views; one line for ``cw init``.

    Without a password the role is not created (a role nobody can log in as is no use, and one
    with a default password is a hole); an existing one keeps its grants.
    """
    existed = await conn.fetchval(ROLE_EXISTS, role) is not None
    if not await conn.fetchval(MAY_MANAGE_ROLES):
        return await _grant_views_only(conn, role, existed=existed, password=password)
    if not password:
        return f"read-only role {role}: not created (set CW_READER_PASSWORD to create it)"
    quoted = await conn.fetchrow(QUOTE, role, password)
    assert quoted is not None
    names = {"role": quoted["ident"], "password": quoted["literal"]}
    names["db"] = (await conn.fetchval("SELECT quote_ident($1)", quoted["db"])) or ""
    async with conn.transaction():
        await conn.execute((ALTER_ROLE if existed else CREATE_ROLE).format(**names))
        for statement in (*REVOKE_FROM_PUBLIC, *GRANTS, READ_ONLY_SESSIONS):
            await conn.execute(statement.format(**names))
        for view in PUBLIC_VIEWS:
            await conn.execute(GRANT_VIEW.format(view=view, **names))
    verb = "updated" if existed else "created"
    return f"read-only role {role}: {verb}; it may read the public views only"


async def _grant_views_only(
    conn: asyncpg.Connection, role: str, *, existed: bool, password: str | None
) -> str:
    """``cw init`` as the services' role, which may not create roles: ``cw db setup`` made the
    reader (its login, its read-only sessions); the views' owner grants it the views."""
    if not existed:
        if not password:
            return f"read-only role {role}: not created (set CW_READER_PASSWORD to create it)"
        return (
            f"read-only role {role}: not created: CW_DATABASE_URL's user may not create roles; "
            "cw db setup creates it"
        )
    ident = await conn.fetchval("SELECT quote_ident($1)", role)
    async with conn.transaction():
        for view in PUBLIC_VIEWS:
            await conn.execute(GRANT_VIEW.format(view=view, role=ident))
    return f"read-only role {role}: granted the public views (its login is cw db setup's)"
