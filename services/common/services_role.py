"""The services' role: the owner of schema ``cw``, and of everything the system keeps.

``cw db setup`` makes CW_DATABASE_URL's user that role (it creates ``cw`` owned by it, and hands
over what another role made); on a plain database, whoever runs the first ``cw init`` creates
``cw`` and is the services' role, as before. The services run as it and use only what it owns.

So every command that creates or replaces database objects (``cw init``: the migrations, the
read model, the reminders' schema, the notifier's ledger; ``cw rebuild``: a generation and the
views) acts as that role, whatever role it connects as: one that may become it (``SET ROLE``: a
member, a superuser) does, any other is refused before anything changes, in one line naming the
role to use. An object of the system that another role owns (a superuser's ``cw rebuild`` of
before made one) is refused the same way, naming ``cw db setup``, which hands it over: the
services could not use it. ``cw db setup`` itself runs as the administrator, on purpose.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import asyncpg

SYSTEM_SCHEMAS = ("cw", "cw_reminders", "cw_notifier")
"""The schemas the system keeps, besides the generations ``cw_rm_<n>``."""

OWNER = "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'cw'"
WHO = "SELECT current_user::text"
MAY_CREATE_SCHEMAS = "SELECT has_database_privilege(current_database(), 'CREATE')"
MAY_BECOME = "SET LOCAL ROLE {role}"
"""Tried in a transaction that is rolled back: whether this session may act as the role."""
BECOME = "SET ROLE {role}"
BE_MYSELF = "RESET ROLE"

SYSTEM_OBJECTS = """
SELECT 'schema' AS kind, n.nspname::text AS schema, NULL::text AS name,
       pg_get_userbyid(n.nspowner)::text AS owner
FROM pg_namespace n
WHERE n.nspname = ANY($1::text[]) OR n.nspname ~ '^cw_rm_[0-9]+$'
UNION ALL
SELECT 'relation', n.nspname::text, c.relname::text, pg_get_userbyid(c.relowner)::text
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S')
  AND (n.nspname = ANY($1::text[]) OR n.nspname ~ '^cw_rm_[0-9]+$'
       OR (n.nspname = 'public' AND c.relkind = 'v' AND c.relname = ANY($2::text[])))
  -- a sequence of a serial column follows its table
  AND NOT EXISTS (SELECT 1 FROM pg_depend d
                  WHERE d.objid = c.oid AND d.classid = 'pg_class'::regclass
                    AND d.deptype IN ('a', 'i') AND c.relkind = 'S')
"""
"""Everything the system keeps: its schemas, the generations, what is in them, the public views
(``$2``)."""

NOT_OWNED = f"""
SELECT kind, schema, name, owner FROM ({SYSTEM_OBJECTS}) o
WHERE owner <> $3
ORDER BY kind DESC, schema, name
"""
"""What the system keeps that the services' role (``$3``) does not own."""


class NotTheServicesRole(Exception):
    """A command that creates database objects would make them owned by another role than the
    services': the message says which role to use, in one line."""


@dataclass(frozen=True, slots=True)
class ServicesRole:
    """Who the services' role is, and who this session is."""

    name: str
    """The owner of ``cw``; on a plain database, the connecting role (it will create ``cw``)."""
    connected_as: str

    @property
    def server_settings(self) -> dict[str, str]:
        """asyncpg's ``server_settings`` for a session that acts as the role from its start."""
        return {} if self.name == self.connected_as else {"role": self.name}


async def services_role(conn: asyncpg.Connection) -> ServicesRole:
    """The services' role; raises ``NotTheServicesRole`` when this session may not act as it.
    Changes nothing."""
    current = str(await conn.fetchval(WHO))
    owner = await conn.fetchval(OWNER)
    if owner is None and not await conn.fetchval(MAY_CREATE_SCHEMAS):
        raise NotTheServicesRole(
            f"schema cw does not exist, and CW_DATABASE_URL's user {current} may not create "
            f"schemas in this database: cw db setup (as an administrator) makes {current} the "
            "services' role, and creates it"
        )
    if owner is None or owner == current:
        return ServicesRole(str(owner or current), current)
    role = ServicesRole(str(owner), current)
    try:
        async with conn.transaction():
            await conn.execute(MAY_BECOME.format(role=await _ident(conn, role.name)))
            raise _MayBecome
    except _MayBecome:
        return role
    except asyncpg.InsufficientPrivilegeError:
        raise NotTheServicesRole(
            f"CW_DATABASE_URL's user {current} may not act as {role.name}, the services' role "
            f"(the owner of schema cw), and what it creates must be {role.name}'s for the "
            f"services to use it: run it as {role.name} (or as a superuser)"
        ) from None


class _MayBecome(Exception):
    """Rolls back the transaction that tried ``SET LOCAL ROLE``."""


async def check_services_role(
    conn: asyncpg.Connection, public_views: Sequence[str] = ()
) -> ServicesRole:
    """``services_role``, and that the role owns everything the system keeps (``public_views``
    among it): a command checks this before it changes anything. Raises ``NotTheServicesRole``.
    """
    role = await services_role(conn)
    strays = await conn.fetch(NOT_OWNED, list(SYSTEM_SCHEMAS), list(public_views), role.name)
    if strays:
        first = strays[0]
        what = f"schema {first['schema']}"
        if first["kind"] != "schema":
            what = f"{first['schema']}.{first['name']}"
        more = f" (and {len(strays) - 1} more objects)" if len(strays) > 1 else ""
        raise NotTheServicesRole(
            f"{what}{more} belongs to {first['owner']}, not to {role.name}, the services' role "
            "(the owner of schema cw), so the services may not use it: cw db setup (as an "
            "administrator, CW_ADMIN_DATABASE_URL) hands it over"
        )
    return role


@contextlib.asynccontextmanager
async def acting_as_services_role(conn: asyncpg.Connection) -> AsyncIterator[ServicesRole]:
    """``conn`` acts as the services' role inside the block (``SET ROLE``), and as itself after
    it. Raises ``NotTheServicesRole`` before the block when it may not."""
    role = await services_role(conn)
    if not role.server_settings:
        yield role
        return
    await conn.execute(BECOME.format(role=await _ident(conn, role.name)))
    try:
        yield role
    except BaseException:
        with contextlib.suppress(Exception):  # the block's failure is the news
            await conn.execute(BE_MYSELF)
        raise
    await conn.execute(BE_MYSELF)


async def _ident(conn: asyncpg.Connection, name: str) -> str:
    return str(await conn.fetchval("SELECT quote_ident($1)", name))
