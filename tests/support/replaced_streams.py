"""A stream replaced under the consumers: deleted and created again by ``cw init``'s plans, as
after a NATS node lost its store, or a restore of an older backup. Its sequences start again."""

from __future__ import annotations

from nats.aio.client import Client

from services.common.streams import ensure_streams, stream_plans


async def recreate_stream(nc: Client, name: str) -> None:
    """Delete ``name`` and create it again, empty, with the configuration ``cw init`` gives it."""
    js = nc.jetstream()
    await js.delete_stream(name)
    plans = [p for p in stream_plans() if p.config.name == name]
    assert plans, f"no stream plan for {name}"
    await ensure_streams(js, plans)
