"""Helpers for the "nothing is lost" regression tests: big backlogs, the real projector in this
process, and the public signs of progress (the checkpoint, the archive, the dead letters)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import timedelta

import asyncpg
from nats.aio.client import Client

from contracts import Event, encode_event
from services.common.deadletters import DeadLetter
from services.common.settings import Settings
from services.common.streams import DEAD_LETTERS_STREAM, EVENTS_STREAM
from services.projector.adapters.metrics import ProjectorMetrics
from services.projector.adapters.read_model import PostgresReadModel
from services.projector.bootstrap import run_projector
from tests import factories as f
from tests.support.in_process import service_in_process
from tests.support.waiting import NotInTime, eventually

log = logging.getLogger("tests.nothing_lost")

# 2,000 Chinese characters, the most ``IssueFound.data.description`` allows: about 6 KB of UTF-8.
LONG_DESCRIPTION = ("熟食区未设防蝇设施，操作间地面积水，冷藏柜温度记录缺失。" * 80)[:2000]
# 256 characters, the most an evidence reference allows (768 bytes of UTF-8).
LONG_EVIDENCE = ("照片编号现场检查记录" * 30)[:256]
START = f.at("2023-03-01 09:00")

WRITE_LOCKS = """
SELECT pid, granted FROM pg_locks
WHERE locktype = 'advisory' AND mode = 'ExclusiveLock'
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""
"""The projectors' write locks (``SingleWriter``) in this database: held, or waited for."""


def big_issue(i: int, *, evidence: int = 0) -> Event:
    """A valid ``IssueFound`` of about 6.3 KB (``evidence=0``) or 44 KB (``evidence=50``)."""
    data = {
        "issue_id": f"BIG-{i:06d}",
        "item_code": "FM-3F",
        "category": "FM",
        "severity": "major",
        "description": LONG_DESCRIPTION,
        "evidence": [f"{i:06d}-{k:02d}-{LONG_EVIDENCE}"[:256] for k in range(evidence)],
    }
    return f.event("IssueFound", f"V{i % 97}", START + timedelta(seconds=i), data)


async def publish_pipelined(nc: Client, events: Sequence[Event], window: int = 2000) -> int:
    """Publish ``events`` with ``Nats-Msg-Id`` (as ``cw publish`` does), many in flight at once;
    every one confirmed. Returns the stream's last sequence."""
    js = nc.jetstream()
    for start in range(0, len(events), window):
        futures = [
            await js.publish_async(
                ev.subject, encode_event(ev), headers={"Nats-Msg-Id": str(ev.event_id)}
            )
            for ev in events[start : start + window]
        ]
        await asyncio.gather(*futures)
    return await last_seq(nc)


async def last_seq(nc: Client, stream: str = EVENTS_STREAM) -> int:
    info = await nc.jetstream().stream_info(stream)
    return int(info.state.last_seq)


async def dead_letters(nc: Client) -> list[DeadLetter]:
    """Every message in ``CW_DEAD_LETTERS``."""
    js = nc.jetstream()
    info = await js.stream_info(DEAD_LETTERS_STREAM)
    if not info.state.messages:
        return []
    out = []
    for seq in range(int(info.state.first_seq), int(info.state.last_seq) + 1):
        m = await js.get_msg(DEAD_LETTERS_STREAM, seq)
        out.append(DeadLetter.from_message(seq, m.subject or "", m.data or b"", m.headers))
    return out


@dataclass(frozen=True)
class Archived:
    rows: int
    distinct_event_ids: int
    distinct_seqs: int


async def archived(db: asyncpg.Connection) -> Archived:
    row = await db.fetchrow(
        "SELECT count(*) AS n, count(DISTINCT event_id) AS ids, count(DISTINCT stream_seq) AS seqs"
        " FROM event_archive"
    )
    assert row is not None
    return Archived(int(row["n"]), int(row["ids"]), int(row["seqs"]))


class Checkpoint:
    """The projector's committed stream sequence, read the way the projector reads it."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._store = PostgresReadModel(pool)

    @classmethod
    @contextlib.asynccontextmanager
    async def of(cls, database_url: str) -> AsyncIterator[Checkpoint]:
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
        assert pool is not None
        try:
            yield cls(pool)
        finally:
            await pool.close()

    async def value(self) -> int:
        return await self._store.checkpoint()

    async def reaches(
        self,
        target: int,
        within: float,
        running: Sequence[asyncio.Task[None]] = (),
        *,
        watching: asyncio.Task[None] | None = None,
    ) -> int:
        """Wait until the checkpoint is at ``target`` or ``within`` seconds have passed; return the
        checkpoint then (the caller asserts). A task of ``running`` that fails is re-raised; when
        the ``watching`` task ends, the wait ends too (the caller looks at how it ended)."""

        async def reached() -> bool:
            return await self.value() >= target or (watching is not None and watching.done())

        try:
            await eventually(
                reached, within=within, what=f"checkpoint reaches {target}", running=running
            )
        except NotInTime:
            log.error("checkpoint %s, not %s, after %ss", await self.value(), target, within)
        return await self.value()


def projector_in_process(
    settings: Settings, metrics: ProjectorMetrics | None = None
) -> contextlib.AbstractAsyncContextManager[asyncio.Task[None]]:
    """``run_projector`` (what ``cw run projector`` runs) as a task; stopped on the way out."""
    return service_in_process(run_projector, settings, metrics or ProjectorMetrics())


def counter(metrics: ProjectorMetrics, name: str, **labels: str) -> float:
    """The value of counter ``name`` (without ``_total``) with ``labels``; 0 if never counted."""
    return metrics.registry.get_sample_value(f"{name}_total", labels) or 0.0
