"""``cw init``: create the streams and the database objects. Safe to run again."""

from __future__ import annotations

import argparse
import logging
import sys

import asyncpg

from services.common.campaign import load_campaign
from services.common.connect import (
    NatsAccess,
    Unreachable,
    connect_command,
    connect_postgres_command,
    failure_text,
)
from services.common.database_zone import ensure_database_zone
from services.common.runtime import run
from services.common.services_role import NotTheServicesRole, check_services_role
from services.common.settings import Settings
from services.common.streams import ensure_streams, stream_plans

log = logging.getLogger(__name__)

EXIT_UNREACHABLE = 2


async def _database_zone(settings: Settings) -> list[str]:
    """Plain sessions (psql) show times in the campaign's zone."""
    zone = load_campaign(settings.campaign_file).timezone
    conn = await connect_postgres_command(settings.database_url)
    try:
        return await ensure_database_zone(conn, zone)
    finally:
        await conn.close()


async def _check_services_role(settings: Settings) -> None:
    """What ``cw init`` creates will be the services' role's: refuse before anything changes
    when it cannot be (``NotTheServicesRole``)."""
    from services.projector.adapters.reader_role import PUBLIC_VIEWS  # noqa: PLC0415

    conn = await connect_postgres_command(settings.database_url)
    try:
        await check_services_role(conn, PUBLIC_VIEWS)
    finally:
        await conn.close()


async def initialise(settings: Settings) -> list[str]:
    """Create what is missing; change nothing an operator chose (but a ``max_msg_size`` that
    would not leave room for dead-letter headers). Returns one line per object.

    Then each service of the registry ensures what it needs (``RunnableService.ensure``), as
    the services' role (:mod:`services.common.services_role`). Raises ``Unreachable`` within
    seconds when NATS or PostgreSQL cannot be reached, and ``NotTheServicesRole`` before
    anything changes when what it creates could not be the services' role's.
    """
    from services.registry import all_services  # noqa: PLC0415

    # The services read the campaign file: a bad one is refused here, before anything runs.
    load_campaign(settings.campaign_file)
    nc = await connect_command(NatsAccess.from_settings(settings), name="cw-init")
    try:
        # NATS answers first (said first when it is away), then nothing changes unless what
        # is made will be the services' role's.
        await _check_services_role(settings)
        report = await ensure_streams(
            nc.jetstream(),
            stream_plans(
                settings.events_duplicate_window,
                settings.dead_letter_duplicate_window,
                settings.reminders_duplicate_window,
            ),
        )
    finally:
        await nc.close()
    report.extend(await _database_zone(settings))
    for service in all_services():
        if service.ensure is not None:
            report.extend(await service.ensure(settings))
    return report


def _init(args: argparse.Namespace) -> int:
    try:
        lines = run(initialise(Settings()))
    except (Unreachable, NotTheServicesRole) as exc:
        print(f"cw init: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except asyncpg.InsufficientPrivilegeError as exc:
        print(f"cw init: PostgreSQL refused it: {failure_text(exc)}", file=sys.stderr)
        return EXIT_UNREACHABLE
    for line in lines:
        print(line)
    return 0


async def setup(settings: Settings) -> list[str]:
    """``cw db setup``: the administrator's step (:mod:`services.common.database_roles`)."""
    from services.common.database_roles import SetupRefused, setup_database  # noqa: PLC0415
    from services.projector.adapters.reader_role import (  # noqa: PLC0415
        PUBLIC_FUNCTIONS,
        PUBLIC_VIEWS,
    )

    if not settings.admin_database_url:
        raise SetupRefused(
            "set CW_ADMIN_DATABASE_URL to a superuser's URL (or a role with CREATEROLE and "
            "CREATEDB); it is read from the environment, never from the command line"
        )
    password = settings.reader_password
    return await setup_database(
        settings.admin_database_url,
        settings.database_url,
        reader_role=settings.reader_role,
        reader_password=password.get_secret_value() if password else None,
        zone=load_campaign(settings.campaign_file).timezone,
        public_views=PUBLIC_VIEWS,
        public_functions=PUBLIC_FUNCTIONS,
    )


def _db_setup(args: argparse.Namespace) -> int:
    from services.common.database_roles import SetupRefused, admin_unreachable  # noqa: PLC0415

    try:
        lines = run(setup(Settings()))
    except Unreachable as exc:
        print(f"cw db setup: {admin_unreachable(exc)}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except SetupRefused as exc:
        print(f"cw db setup: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    for line in lines:
        print(line)
    return 0


EXIT_REFUSED = 3


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "init",
        help="create the streams and apply the database migrations",
        description="Create CW_EVENTS, CW_REMINDERS and CW_DEAD_LETTERS if they are missing, "
        "apply the database migrations and create the read model. A stream that exists is left "
        "as it is (settings that differ are reported). What it creates in PostgreSQL is the "
        "services' role's (the owner of schema cw), whoever connects. Safe to run again.",
        epilog="exit status: 0 done; 2 NATS or PostgreSQL cannot be reached, or CW_DATABASE_URL's "
        "user may not act as the services' role, the owner of schema cw (said in one line, "
        "before anything changes)",
    )
    p.set_defaults(handler=_init)

    db = sub.add_parser(
        "db",
        help="the PostgreSQL administrator's step: cw db setup",
        description="What needs an administrator of the PostgreSQL cluster, once.",
    )
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND", help="setup")
    s = db_sub.add_parser(
        "setup",
        help="create the services' role, the read-only role and the database",
        description="As CW_ADMIN_DATABASE_URL (a superuser, or a role with CREATEROLE and "
        "CREATEDB): create or update the role named by CW_DATABASE_URL's user with that URL's "
        "password (LOGIN, NOSUPERUSER, NOCREATEDB, NOCREATEROLE, NOBYPASSRLS), the database of "
        "CW_DATABASE_URL if missing, where the role may create schemas and the public views, "
        "the read-only role CW_READER_ROLE with CW_READER_PASSWORD when set, and the database's "
        "TimeZone. What a superuser's cw init made is handed over to the role. Then run cw init "
        "(and everything else) as CW_DATABASE_URL's user. Safe to run again.",
        epilog="exit status: 0 done; 2 PostgreSQL cannot be reached as the administrator; 3 "
        "refused (said in one line: no CW_ADMIN_DATABASE_URL, CW_DATABASE_URL's user is the "
        "administrator or an administrating role, or the administrator lacks a right)",
    )
    s.set_defaults(handler=_db_setup)
