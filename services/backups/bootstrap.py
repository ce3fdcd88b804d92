"""``cw streams``' composition root: the operator's connection and the backup folder."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from services.backups.adapters.snapshots import Snapshots
from services.common.connect import NatsAccess, connect_command
from services.common.refusals import Refusals


@asynccontextmanager
async def snapshots(access: NatsAccess) -> AsyncIterator[Snapshots]:
    """``Unreachable`` (``Refused``) within seconds when NATS cannot be reached (refuses us)."""
    refusals = Refusals()
    nc = await connect_command(access, name="cw-streams", on_refusal=refusals)
    try:
        yield Snapshots(nc, refusals)
    finally:
        await nc.close()
