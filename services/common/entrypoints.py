"""``cw init``: create the streams and the database objects. Safe to run again."""

from __future__ import annotations

import argparse
import logging
import sys

import asyncpg

from services.common.campaign import load_campaign
from services.common.connect import (
    CONNECT_TIMEOUT_S,
    Unreachable,
    connect_command,
    failure_text,
    mask_url,
)
from services.common.runtime import run
from services.common.settings import Settings
from services.common.streams import ensure_streams, stream_plans

log = logging.getLogger(__name__)

EXIT_UNREACHABLE = 2


async def _check_postgres(url: str) -> None:
    try:
        conn = await asyncpg.connect(url, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise Unreachable(
            f"cannot reach PostgreSQL at {mask_url(url)} ({failure_text(exc)}); "
            "is it running, and is CW_DATABASE_URL right?"
        ) from None
    await conn.close()


async def initialise(settings: Settings) -> list[str]:
    """Create what is missing; change nothing an operator chose (but a ``max_msg_size`` that
    would not leave room for dead-letter headers). Returns one line per object.

    Then each service of the registry ensures what it needs (``RunnableService.ensure``).
    Raises ``Unreachable`` within seconds when NATS or PostgreSQL cannot be reached.
    """
    from services.registry import all_services  # noqa: PLC0415

    # The services read the campaign file: a bad one is refused here, before anything runs.
    load_campaign(settings.campaign_file)
    nc = await connect_command(settings.nats_url)
    try:
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
    await _check_postgres(settings.database_url)
    for service in all_services():
        if service.ensure is not None:
            report.extend(await service.ensure(settings))
    return report


def _init(args: argparse.Namespace) -> int:
    try:
        lines = run(initialise(Settings()))
    except Unreachable as exc:
        print(f"cw init: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    for line in lines:
        print(line)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "init",
        help="create the streams and apply the database migrations",
        epilog="exit status: 0 done; 2 NATS or PostgreSQL cannot be reached (said in one line)",
    )
    p.set_defaults(handler=_init)
