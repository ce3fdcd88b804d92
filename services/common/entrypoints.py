"""``cw init``: create the streams and the database objects. Safe to run again."""

from __future__ import annotations

import argparse

import nats

from services.common.runtime import run
from services.common.settings import Settings
from services.common.streams import ensure_streams, stream_plans


async def initialise(settings: Settings) -> list[str]:
    """Create what is missing; change nothing that exists. Returns one line per object."""
    from services.projector.bootstrap import ensure_read_model  # noqa: PLC0415

    nc = await nats.connect(settings.nats_url, connect_timeout=5)
    try:
        report = await ensure_streams(
            nc.jetstream(),
            stream_plans(settings.events_duplicate_window, settings.dead_letter_duplicate_window),
        )
    finally:
        await nc.close()
    report.extend(await ensure_read_model(settings))
    return report


def _init(args: argparse.Namespace) -> int:
    for line in run(initialise(Settings())):
        print(line)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("init", help="create the streams and apply the database migrations")
    p.set_defaults(handler=_init)
