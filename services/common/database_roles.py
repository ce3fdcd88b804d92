"""``cw db setup``: the one step that needs an administrator of the PostgreSQL cluster.

It creates what a service role may not create for itself, and nothing else:

- the service role, named by ``CW_DATABASE_URL``'s user, with that URL's password: LOGIN,
  NOSUPERUSER, NOCREATEDB, NOCREATEROLE, NOBYPASSRLS, NOREPLICATION;
- the database of ``CW_DATABASE_URL`` when it is missing (owned by the administrator, not by the
  service role), where the service role gets CONNECT and CREATE (new schemas: ``cw``, the
  generations ``cw_rm_<n>`` a rebuild makes, ``cw_reminders``, ``cw_notifier``) and CREATE on
  schema ``public`` (the public views and their functions, which it owns);
- the read-only role (``CW_READER_ROLE``) with ``CW_READER_PASSWORD``, when that is set; which
  views it may read is granted by the views' owner, the service role, in ``cw init``;
- the database's ``TimeZone`` (only its owner may set it).

It creates schema ``cw`` owned by the service role, which makes it the services' role
(:mod:`services.common.services_role`): every command that creates objects acts as it from then
on, whoever connects. The schemas and views of an existing deployment that a superuser
initialised are handed over to it, so that moving to least privilege is this one command.
Everything after it (``cw init``, ``cw rebuild``, the services) runs as the service role, or
as a superuser acting as it.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import asyncpg

from services.common.connect import Unreachable, connect_postgres_command, failure_text
from services.common.database_zone import ensure_database_zone
from services.common.services_role import SYSTEM_OBJECTS, SYSTEM_SCHEMAS

ROLE = "SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls FROM pg_roles WHERE rolname = $1"
QUOTE = "SELECT quote_ident($1) AS ident, quote_literal($2) AS literal"
DATABASE_EXISTS = "SELECT 1 FROM pg_database WHERE datname = $1"
SCHEMA_CW_EXISTS = "SELECT 1 FROM pg_namespace WHERE nspname = 'cw'"
CREATE_DATABASE = "CREATE DATABASE {db}"
SERVICE_ATTRIBUTES = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOREPLICATION"
CREATE_ROLE = "CREATE ROLE {role} " + SERVICE_ATTRIBUTES + "{password}"
ALTER_ROLE = "ALTER ROLE {role} " + SERVICE_ATTRIBUTES + "{password}"
# PUBLIC keeps CONNECT but loses what lets any role create objects in this database: TEMPORARY
# (granted to PUBLIC by default) and CREATE on schema public (until PostgreSQL 15, by default).
SERVICE_GRANTS = (
    "REVOKE TEMPORARY ON DATABASE {db} FROM PUBLIC",
    "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
    "GRANT CONNECT, CREATE ON DATABASE {db} TO {role}",
    "GRANT USAGE, CREATE ON SCHEMA public TO {role}",
    # Its owner is the services' role (services.common.services_role): every command that
    # creates objects later acts as it, whoever connects.
    "CREATE SCHEMA IF NOT EXISTS cw AUTHORIZATION {role}",
)
READER_ATTRIBUTES = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOREPLICATION"
CREATE_READER = "CREATE ROLE {reader} " + READER_ATTRIBUTES + " PASSWORD {password}"
ALTER_READER = "ALTER ROLE {reader} " + READER_ATTRIBUTES + " PASSWORD {password}"
READER_GRANTS = (
    "GRANT CONNECT ON DATABASE {db} TO {reader}",
    "GRANT USAGE ON SCHEMA public TO {reader}",
    # A second line of defence should a grant ever be too wide: its sessions cannot write.
    "ALTER ROLE {reader} IN DATABASE {db} SET default_transaction_read_only = on",
)
NOT_OWNED = f"""
SELECT statement FROM (
    SELECT CASE kind
           WHEN 'schema' THEN format('ALTER SCHEMA %I OWNER TO %I', schema, $3::text)
           ELSE format('ALTER TABLE %I.%I OWNER TO %I', schema, name, $3::text)
           END AS statement, kind
    FROM ({SYSTEM_OBJECTS}) o
    WHERE owner <> $3
    UNION ALL
    SELECT format('ALTER FUNCTION %s OWNER TO %I', p.oid::regprocedure, $3::text), 'function'
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname = 'public' AND p.proname = ANY($4::text[])
      AND pg_get_userbyid(p.proowner) <> $3
) s
ORDER BY kind DESC
"""
"""What a superuser's ``cw init`` left owned by someone else than the service role."""


class SetupRefused(Exception):
    """``cw db setup`` will not do what was asked; the message says why, without secrets."""


@dataclass(frozen=True, slots=True)
class Target:
    role: str
    password: str | None
    database: str

    @classmethod
    def of(cls, database_url: str) -> Target:
        parts = urlsplit(database_url)
        role = unquote(parts.username or "")
        database = unquote(parts.path.lstrip("/"))
        if not role:
            raise SetupRefused(
                "CW_DATABASE_URL names no user: its user is the role the services run as "
                "(e.g. postgresql://cw_service:PASSWORD@host:5432/chuangwei)"
            )
        if not database:
            raise SetupRefused("CW_DATABASE_URL names no database")
        password = None if parts.password is None else unquote(parts.password)
        return cls(role, password, database)


def on_database(url: str, database: str) -> str:
    """``url`` pointed at another database of the same server."""
    return urlunsplit(urlsplit(url)._replace(path="/" + database))


async def setup_database(
    admin_url: str,
    database_url: str,
    *,
    reader_role: str,
    reader_password: str | None,
    zone: ZoneInfo,
    public_views: tuple[str, ...],
    public_functions: tuple[str, ...],
) -> list[str]:
    """Create the roles and the database, grant what the service role needs; one line each.

    Safe to run again: a role that exists gets the attributes above (and the URL's password),
    a database that exists is kept. Raises ``SetupRefused`` when ``CW_DATABASE_URL``'s user is
    the administrator or a role with administrative rights (it would lose them), and
    ``Unreachable`` when the administrator cannot connect."""
    target = Target.of(database_url)
    report: list[str] = []
    admin = await connect_postgres_command(admin_url)
    try:
        if target.role == await admin.fetchval("SELECT current_user"):
            raise SetupRefused(
                f"CW_DATABASE_URL's user {target.role} is the administrator "
                "(CW_ADMIN_DATABASE_URL's user): the services need a role of their own"
            )
        report.append(await _service_role(admin, target))
        if await admin.fetchval(DATABASE_EXISTS, target.database) is None:
            db = await admin.fetchval("SELECT quote_ident($1)", target.database)
            await admin.execute(CREATE_DATABASE.format(db=db))
            report.append(f"database {target.database}: created")
        else:
            report.append(f"database {target.database}: exists, kept")
    except asyncpg.PostgresError as exc:
        raise SetupRefused(f"the administrator may not: {failure_text(exc)}") from None
    finally:
        await admin.close()

    conn = await connect_postgres_command(on_database(admin_url, target.database))
    try:
        names = {
            "role": await conn.fetchval("SELECT quote_ident($1)", target.role),
            "db": await conn.fetchval("SELECT quote_ident($1)", target.database),
        }
        async with conn.transaction():
            had_cw = await conn.fetchval(SCHEMA_CW_EXISTS)
            for statement in SERVICE_GRANTS:
                await conn.execute(statement.format(**names))
            handed = [
                row["statement"]
                for row in await conn.fetch(
                    NOT_OWNED,
                    list(SYSTEM_SCHEMAS),
                    list(public_views),
                    target.role,
                    list(public_functions),
                )
            ]
            for statement in handed:
                await conn.execute(statement)
        report.append(
            f"role {target.role}: may connect to {target.database}, create schemas there and "
            "views in public; owns what the system keeps"
            + ("" if had_cw else " (schema cw created)")
            + (f" ({len(handed)} objects handed over)" if handed else "")
        )
        report.append(await _reader_role(conn, reader_role, reader_password, names["db"]))
        report.extend(await ensure_database_zone(conn, zone))
    except asyncpg.PostgresError as exc:
        raise SetupRefused(f"the administrator may not: {failure_text(exc)}") from None
    finally:
        await conn.close()
    return report


async def _service_role(admin: asyncpg.Connection, target: Target) -> str:
    existing = await admin.fetchrow(ROLE, target.role)
    if existing is not None and (existing["rolsuper"] or existing["rolcreaterole"]):
        # Taking the rights away would lock out whoever uses the role to administer.
        raise SetupRefused(
            f"role {target.role} (CW_DATABASE_URL's user) administers the cluster "
            "(SUPERUSER or CREATEROLE): name a role of the services' own in CW_DATABASE_URL"
        )
    quoted = await admin.fetchrow(QUOTE, target.role, target.password or "")
    assert quoted is not None
    password = "" if target.password is None else f" PASSWORD {quoted['literal']}"
    template = CREATE_ROLE if existing is None else ALTER_ROLE
    await admin.execute(template.format(role=quoted["ident"], password=password))
    verb = "created" if existing is None else "updated"
    if target.password:
        login = "with CW_DATABASE_URL's password"
    elif existing is None:
        login = "without a password (CW_DATABASE_URL has none)"
    else:
        login = "(its password unchanged: CW_DATABASE_URL has none)"
    return f"role {target.role}: {verb} {login}; not a superuser, may not create roles or databases"


async def _reader_role(conn: asyncpg.Connection, reader: str, password: str | None, db: str) -> str:
    existed = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", reader) is not None
    if not password:
        if existed:
            return f"read-only role {reader}: exists, kept (CW_READER_PASSWORD unset)"
        return f"read-only role {reader}: not created (set CW_READER_PASSWORD to create it)"
    quoted = await conn.fetchrow(QUOTE, reader, password)
    assert quoted is not None
    names = {"reader": quoted["ident"], "password": quoted["literal"], "db": db}
    async with conn.transaction():
        await conn.execute((ALTER_READER if existed else CREATE_READER).format(**names))
        for statement in READER_GRANTS:
            await conn.execute(statement.format(**names))
    verb = "updated" if existed else "created"
    return f"read-only role {reader}: {verb}; cw init grants it the public views"


def admin_unreachable(exc: Unreachable) -> str:
    """The line ``cw db setup`` prints: the connection failure names the admin setting."""
    return str(exc).replace("CW_DATABASE_URL", "CW_ADMIN_DATABASE_URL")
