"""The fault suite: each case is a function of its sizes that runs against real servers of its
own (a nats-server started for the case, a fresh database on the run's PostgreSQL, the services
as ``cw run`` processes), injects its fault, and returns its figures: events, lost, doubled,
recovery time, the verdict of ``cw audit``, and a note.

``bench/faults.py`` (``make faults``) runs every case at full size and writes ``bench/faults.md``;
``tests/e2e/test_faults.py`` runs them small and asserts. Recovery time is measured from the
fault's end (the restart, the reconnection, the standby's takeover) until the consumer has caught
up (its checkpoint at the stream's last sequence): printed, never asserted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import nats
from nats.aio.client import Client
from nats.js.errors import NotFoundError

from contracts import Event, encode_event
from contracts.reminders import reminder_id
from contracts.wire import MSG_ID, REMINDERS_STREAM
from services.common.entrypoints import initialise
from services.common.settings import Settings
from services.devstack.servers import OwnNats, create_database
from services.projector.adapters.audit import read_checkpoint, read_model_facts
from services.projector.domain.audit import DEAD_LETTERED
from tests import factories as f
from tests.support import reminder_messages as rm
from tests.support.hostile import hostile_messages
from tests.support.nothing_lost import (
    WRITE_LOCKS,
    big_issue,
    dead_letters,
    last_seq,
    publish_pipelined,
)
from tests.support.notifier import notify_file
from tests.support.processes import ProjectorProcess, cw, cw_env
from tests.support.reminders import campaign_file, published, soon
from tests.support.robots import FakeWebhook
from tests.support.tcp_proxy import FaultyProxy, via
from tests.support.waiting import NotInTime, eventually

log = logging.getLogger("tests.faults")
START = f.at("2023-03-01 09:00")
PROJECTOR_BATCH = "500"
"""Small batches for the kill cases, so that a kill lands in the middle of a backlog."""
PER_SECOND = 2_000
"""The load: events published per second while a fault happens."""

REMINDERS_CHECKPOINT = "SELECT COALESCE(max(stream_seq), 0) FROM cw_reminders.checkpoint"
REMINDERS_CAUGHT_UP = """
SELECT (SELECT COALESCE(max(stream_seq), 0) FROM cw_reminders.checkpoint) >= $1
   AND NOT EXISTS (SELECT 1 FROM cw_reminders.timers
                   WHERE state = 'pending' AND kind <> 'digest' AND fire_at <= now() - $2::interval)
   AND NOT EXISTS (SELECT 1 FROM cw_reminders.outbox
                   WHERE published_at IS NULL AND expired_at IS NULL
                     AND fire_at <= now() - $2::interval)
"""
"""The reminders service has read the backlog (to ``$1``), and every timer due more than ``$2``
ago (but the next digest) is settled and published; with ``$2`` of minus an hour, every one."""
SKIPPED_AS_PASSED = """
SELECT reminder_id FROM cw_reminders.timers
WHERE state = 'skipped' AND reason = 'passed' AND kind = 'due_soon'
  AND COALESCE(settled_at, scheduled_at) >= fire_at - interval '1 second'
"""
"""A due_soon reminder whose moment had passed when its deadline was read is skipped, by the
reminders' rules (``state_when_scheduled``): after a kill, or when the backlog was read late (a
loaded machine). A timer skipped as it is scheduled has no ``settled_at``, only ``scheduled_at``:
the start of the transaction that read it, in which the service then reads its clock; the second
allows for that."""
NOTIFIER_CHECKPOINT = "SELECT COALESCE(max(stream_seq), 0) FROM cw_notifier.checkpoints"
ARCHIVED_IDS = "SELECT event_id, count(*) AS n FROM event_archive GROUP BY event_id"
ARCHIVED_SEQS = "SELECT stream_seq FROM event_archive"


@dataclass(frozen=True)
class Sizes:
    """How big each case is: full size for ``make faults``, ``SMALL`` for ``make test``."""

    events: int = 20_000
    kills: int = 5
    cut_s: float = 20.0
    large_6k: int = 5_000
    large_44k: int = 500
    hostile: int = 10_000
    reminders: int = 20_000
    """The notifier's backlog: it delivers one reminder per webhook request, each recorded in a
    few transactions."""
    within_s: float = 600.0
    """The longest any wait may take before the case gives up (and says so)."""


SMALL = Sizes(events=1_500, kills=1, cut_s=3.0, large_6k=200, large_44k=20, hostile=600,
              reminders=600, within_s=90.0)  # fmt: skip


@dataclass(frozen=True)
class Figures:
    case: str
    events: int
    lost: int
    doubled: int
    recovery_s: float | None
    """From the fault's end until caught up; None when the case never caught up."""
    audit: str
    """``clean`` or what ``cw audit`` said instead."""
    note: str
    doubled_allowed: int = 0
    """Doubles the case's promise allows (the notifier: the request in flight at each kill)."""

    @property
    def audit_clean(self) -> bool:
        return self.audit == "clean"


class Lab:
    """Where the cases run: a folder for each case's nats-server and logs, and a PostgreSQL
    (``admin_url``) on which each case gets a database of its own, dropped afterwards."""

    def __init__(self, admin_url: str, folder: Path) -> None:
        self.admin_url, self.folder = admin_url, folder

    @contextlib.asynccontextmanager
    async def site(self, case: str) -> AsyncIterator[Site]:
        folder = self.folder / case
        folder.mkdir(parents=True)
        name = f"cw_faults_{uuid.uuid4().hex[:8]}"
        await create_database(self.admin_url, name)
        site = Site(OwnNats(folder / "nats"), f"{self.admin_url.rpartition('/')[0]}/{name}", folder)
        try:
            await site.nats.astart()
            site.db = await asyncpg.connect(site.database_url)
            yield site
        finally:
            await site.close()
            admin = await asyncpg.connect(self.admin_url)
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await admin.close()


@dataclass
class Site:
    """One case's servers and services."""

    nats: OwnNats
    database_url: str
    folder: Path
    db: asyncpg.Connection = field(init=False)
    services: list[ProjectorProcess] = field(default_factory=list)
    clients: list[Client] = field(default_factory=list)
    restarts: list[str] = field(default_factory=list)
    """Services found dead and restarted, as a supervisor would (each says which and its
    status)."""

    @property
    def settings(self) -> Settings:
        return Settings(nats_url=self.nats.url, database_url=self.database_url, metrics_port=0)

    def env(self, database_url: str | None = None, **settings: str) -> dict[str, str]:
        defaults = {"metrics_port": "0", "projector_fetch_wait": "200ms"}
        return cw_env(self.nats.url, database_url or self.database_url, **defaults | settings)

    def service(
        self, name: str, label: str | None = None, database_url: str | None = None, **settings: str
    ) -> ProjectorProcess:
        """``cw run name`` (not started yet); its log in the case's folder."""
        label = label or name
        p = ProjectorProcess(self.env(database_url, **settings), self.folder / f"{label}.log", name)
        self.services.append(p)
        return p

    async def init(self) -> None:
        await initialise(self.settings)

    async def connect(self) -> Client:
        nc = await nats.connect(
            self.nats.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2, error_cb=_quiet
        )
        self.clients.append(nc)
        return nc

    def supervise(self) -> None:
        """Restart a service that has ended, as ``cw dev`` or systemd would, and note it."""
        for p in self.services:
            if p.proc is not None and (code := p.proc.poll()) is not None:
                self.restarts.append(f"{p.log.stem} exited {code}")
                log.warning("%s exited with %s, restarted:\n%s", p.log.stem, code, p.tail())
                p.start()

    async def until(self, check: Callable[[], Awaitable[bool]], within: float, what: str) -> bool:
        """Wait for ``check`` (supervising the services meanwhile); False if not in time."""

        async def supervised() -> bool:
            self.supervise()
            return await check()

        try:
            await eventually(supervised, within=within, what=what)
        except NotInTime:
            log.error("%s: not within %ss", what, within)
            return False
        return True

    async def recovery(
        self, since: float, check: Callable[[], Awaitable[bool]], within: float
    ) -> float | None:
        """Seconds from ``since`` (a ``time.monotonic()``) until ``check`` holds."""
        if await self.until(check, within, "caught up"):
            return time.monotonic() - since
        return None

    async def projector_checkpoint(self) -> int:
        return await read_checkpoint(self.db)

    async def projector_reaches(self, seq: int) -> bool:
        return await self.projector_checkpoint() >= seq

    async def kill_nats(self) -> None:
        """``kill -9`` the nats-server, and start it again on the same store and ports."""
        proc = self.nats.proc
        assert proc is not None
        proc.send_signal(signal.SIGKILL)
        await asyncio.to_thread(proc.wait, 10)
        old = self.nats
        self.nats = OwnNats(old.store, port=old.port, monitor_port=old.monitor_port)
        await self.nats.astart()

    async def audit(self) -> str:
        """``cw audit``, the real command: ``clean``, or its verdict line."""
        done = await asyncio.to_thread(cw, self.env(), "audit")
        if done.returncode == 0:
            return "clean"
        lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
        verdict = [line for line in lines if "UNACCOUNTED" in line] or lines[-1:]
        return f"NOT CLEAN (exit {done.returncode}): {verdict[0] if verdict else ''}".strip()

    async def archive_of(self, events: Sequence[Event]) -> tuple[int, int]:
        """(lost, doubled) of ``events`` in the read model's archive."""
        counts = {r["event_id"]: int(r["n"]) for r in await self.db.fetch(ARCHIVED_IDS)}
        lost = sum(1 for ev in events if ev.event_id not in counts)
        return lost, sum(n - 1 for n in counts.values())

    async def close(self) -> None:
        for p in self.services:
            p.ensure_gone()
        for nc in self.clients:
            with contextlib.suppress(Exception):
                await nc.close()
        with contextlib.suppress(AttributeError):
            await self.db.close()
        await self.nats.astop()


def issues(n: int, prefix: str = "I") -> list[Event]:
    """``n`` valid ``IssueFound`` events (about 400 bytes each) over 97 venues."""
    return [f.issue(f"V{i % 97}", f"{prefix}{i}", START + timedelta(seconds=i)) for i in range(n)]


@dataclass(frozen=True)
class Kills:
    """What ``kill_at_marks`` did: the progress at each kill, how long after each restart the
    service was working again (its progress moved), and the moment of the last restart."""

    seen: list[int]
    working_again_s: list[float]
    restarted: float

    def say(self, what: str) -> str:
        again = sorted(self.working_again_s)
        if not again:
            resumed = "(nothing was left)"
        elif len(again) == 1:
            resumed = f"after {again[0]:.1f} s"
        else:
            resumed = f"after {again[0]:.1f}–{again[-1]:.1f} s"
        return f"{len(self.seen)}× kill -9 at {_list(self.seen)} {what}; working again {resumed}"


async def kill_at_marks(
    site: Site,
    service: ProjectorProcess,
    kills: int,
    progress: Callable[[], Awaitable[int]],
    total: int,
    *,
    within: float,
) -> Kills:
    """``kill -9`` ``service`` ``kills`` times, each when ``progress`` has reached the next of
    ``kills`` marks spread evenly over ``total``, and restart it at once."""
    seen = []
    again = []
    restarted = time.monotonic()
    for k in range(1, kills + 1):
        mark = total * k // (kills + 1)
        await site.until(partial(_reaches, progress, mark), within, f"{service.log.stem} {mark}")
        service.kill()
        seen.append(await progress())
        service.start()
        restarted = time.monotonic()
        if seen[-1] < total and await site.until(
            partial(_reaches, progress, seen[-1] + 1), within, f"{service.log.stem} again"
        ):
            again.append(time.monotonic() - restarted)
    return Kills(seen, again, restarted)


async def _reaches(progress: Callable[[], Awaitable[int]], mark: int) -> bool:
    return await progress() >= mark


# The cases --------------------------------------------------------------------------------


async def projector_kills(lab: Lab, sizes: Sizes) -> Figures:
    """``kill -9`` of ``cw run projector`` under a backlog, ``kills`` times."""
    async with lab.site("projector-kill") as site:
        await site.init()
        events = issues(sizes.events)
        last = await publish_pipelined(await site.connect(), events)
        projector = site.service("projector", projector_batch=PROJECTOR_BATCH)
        projector.start()
        kills = await kill_at_marks(
            site, projector, sizes.kills, site.projector_checkpoint, last, within=sizes.within_s
        )
        recovery = await site.recovery(
            kills.restarted, lambda: site.projector_reaches(last), sizes.within_s
        )
        lost, doubled = await site.archive_of(events)
        return Figures(
            "kill -9 projector", len(events), lost, doubled, recovery, await site.audit(),
            f"{kills.say('(checkpoint)')}; recovery from the last restart{_restarts(site)}",
        )  # fmt: skip


async def reminders_kills(lab: Lab, sizes: Sizes) -> Figures:
    """``kill -9`` of ``cw run reminders`` while it works through a backlog of events and then
    publishes the reminders due; counted by reminder id in ``CW_REMINDERS``."""
    async with lab.site("reminders-kill") as site:
        await site.init()
        campaign = campaign_file(
            site.folder, order_within="1h", due_soon=("2s",), escalate_every="1s",
            escalate_max=1, look_back_after="1h", stale_after="1h", digest_at=soon(-3600),
        )  # fmt: skip
        due_issues = max(1, sizes.events // 10)
        # Deadlines after the backlog has been read (about 2,000 events a second, or faster).
        base = soon(5 + sizes.events / 2000)
        found = base - timedelta(hours=1)
        events: list[Event] = []
        expected = set()
        inspections = sizes.events - 2 * due_issues
        for i in range(due_issues):
            due = base + timedelta(milliseconds=10 * (i % 1000))
            venue, issue = f"V{i % 37}", f"R{i}"
            events += [f.issue(venue, issue, found), f.due(venue, issue, found, due)]
            events += [f.inspection(venue, found) for _ in range(inspections // due_issues)]
            expected |= {
                reminder_id(f.DISTRICT, "due_soon", issue_id=issue, level=1, deadline=due),
                reminder_id(f.DISTRICT, "overdue", issue_id=issue, deadline=due),
                reminder_id(f.DISTRICT, "escalation", issue_id=issue, level=1, deadline=due),
            }
        events += [f.inspection("V0", found) for _ in range(sizes.events - len(events))]
        nc = await site.connect()
        reminders = site.service(
            "reminders", campaign_file=str(campaign), reminders_metrics_port="0",
            reminders_fetch_wait="200ms", reminders_batch=PROJECTOR_BATCH,
        )  # fmt: skip
        # The projector too (never killed), so that `cw audit` has the backlog to account for.
        site.service("projector").start()
        reminders.start()
        last = await publish_pipelined(nc, events)

        async def progress() -> int:
            """Events read, then reminders published: the kills land in both."""
            read = int(await site.db.fetchval(REMINDERS_CHECKPOINT) or 0)
            return read + await _messages(nc, REMINDERS_STREAM)

        kills = await kill_at_marks(
            site, reminders, sizes.kills, progress, last + len(expected), within=sizes.within_s
        )

        before = await _messages(nc, REMINDERS_STREAM)

        async def caught_up(lag: timedelta = timedelta(seconds=0.2)) -> bool:
            # The restarted service has published (unless nothing was left), and is not behind.
            working = before >= len(expected) or await _messages(nc, REMINDERS_STREAM) > before
            return working and bool(await site.db.fetchval(REMINDERS_CAUGHT_UP, last, lag))

        recovery = await site.recovery(kills.restarted, caught_up, sizes.within_s)
        await site.until(partial(caught_up, -timedelta(hours=1)), sizes.within_s, "all sent")
        await site.until(lambda: site.projector_reaches(last), sizes.within_s, "projector")
        counts = Counter(p.reminder.reminder_id for p in await published(nc))
        passed = {r[0] for r in await site.db.fetch(SKIPPED_AS_PASSED)}
        return Figures(
            "kill -9 reminders", len(events), len(expected - set(counts) - passed),
            sum(n - 1 for n in counts.values()), recovery, await site.audit(),
            f"{len(expected)} reminders due, {len(expected & set(counts))} of them in "
            f"CW_REMINDERS, {len(expected & passed)} due_soon skipped because their moment "
            f"had passed when their deadline was read (as it should), "
            f"{len(set(counts) - expected)} others; "
            f"{kills.say('(events read + reminders published)')}{_restarts(site)}",
        )  # fmt: skip


async def notifier_kills(lab: Lab, sizes: Sizes) -> Figures:
    """``kill -9`` of ``cw run notifier`` while it delivers a backlog of reminders to a webhook
    that records every delivery and its ``Idempotency-Key``."""
    async with lab.site("notifier-kill") as site:
        await site.init()
        webhook = FakeWebhook()
        await webhook.start()
        try:
            target: dict[str, object] = {
                "name": "sms-gateway",
                "kind": "webhook",
                "url": webhook.url,
            }
            path = notify_file(site.folder / "notify.toml", [target])
            notifier = site.service("notifier", notify_file=str(path), notifier_metrics_port="0")
            sent = [rm.reminder(n) for n in range(1, sizes.reminders + 1)]
            nc = await site.connect()
            await rm.publish(nc.jetstream(), sent)
            last = await last_seq(nc, REMINDERS_STREAM)
            notifier.start()

            async def delivered() -> int:
                return len(webhook.calls)

            kills = await kill_at_marks(
                site, notifier, sizes.kills, delivered, len(sent), within=sizes.within_s
            )
            expected = {str(r.reminder_id) for r in sent}

            async def caught_up() -> bool:
                at = int(await site.db.fetchval(NOTIFIER_CHECKPOINT) or 0)
                return at >= last and expected <= set(webhook.keys(200))

            recovery = await site.recovery(kills.restarted, caught_up, sizes.within_s)
            keys = Counter(webhook.keys(200))
            refused = len(webhook.calls) - sum(keys.values())
        finally:
            await webhook.stop()
        doubled = sum(n - 1 for n in keys.values())
        return Figures(
            "kill -9 notifier", len(sent), len(expected - set(keys)), doubled, recovery,
            await site.audit(),
            f"{len(sent)} reminders to a webhook, {len(webhook.calls)} requests ({refused} not "
            f"200); {kills.say('deliveries')}; a double is the request in flight at a kill, "
            f"sent again with the same Idempotency-Key{_restarts(site)}; "
            f"cw audit covers CW_EVENTS (empty here)",
            doubled_allowed=sizes.kills,
        )  # fmt: skip


async def postgres_cut(lab: Lab, sizes: Sizes) -> Figures:
    """PostgreSQL cut (every connection dropped, new ones refused) for ``cut_s`` under load:
    the projector reaches PostgreSQL through a proxy, and events keep arriving during the cut."""
    async with lab.site("postgres-cut") as site:
        await site.init()
        parts = urlsplit(site.database_url)
        proxy = FaultyProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
        await proxy.start()
        try:
            events = issues(sizes.events)
            half = len(events) // 2
            nc = await site.connect()
            await publish_pipelined(nc, events[:half])
            projector = site.service("projector", database_url=via(site.database_url, proxy.port))
            projector.start()
            await site.until(lambda: site.projector_reaches(half // 2), sizes.within_s, "start")
            await proxy.cut()
            cut_at = await site.projector_checkpoint()
            last = await publish_pipelined(nc, events[half:])
            # The fault itself lasts cut_s: this is its duration, not a wait for a condition.
            await asyncio.sleep(sizes.cut_s)
            alive = projector.proc is not None and projector.proc.poll() is None
            await proxy.restore()
            restored = time.monotonic()
            recovery = await site.recovery(
                restored, lambda: site.projector_reaches(last), sizes.within_s
            )
        finally:
            await proxy.stop()
        lost, doubled = await site.archive_of(events)
        return Figures(
            f"PostgreSQL cut {sizes.cut_s:g} s", len(events), lost, doubled, recovery,
            await site.audit(),
            f"cut at checkpoint {cut_at}, {len(events) - half} events published during the "
            f"cut; projector {'stayed up' if alive else 'had exited'} through it; recovery "
            f"from the reconnection{_restarts(site)}",
        )  # fmt: skip


async def nats_kill(lab: Lab, sizes: Sizes) -> Figures:
    """``kill -9`` of nats-server while events are being published and projected, then a
    restart on the same store."""
    async with lab.site("nats-kill") as site:
        await site.init()
        events = issues(sizes.events)
        site.service("projector", projector_batch=PROJECTOR_BATCH).start()
        await site.until(partial(write_locks, site, granted=True), sizes.within_s, "projector up")
        publisher = Publisher(await site.connect(), per_second=PER_SECOND)
        publishing = asyncio.ensure_future(publisher.publish(events))

        async def under_way() -> bool:
            return publisher.acknowledged >= len(events) // 3

        await site.until(under_way, sizes.within_s, "publishing and projecting")
        killed_at = (publisher.acknowledged, await site.projector_checkpoint())
        await site.kill_nats()
        restarted = time.monotonic()
        nc = await site.connect()
        there = await last_seq(nc)
        # Caught up: it has projected an event published after the restart.
        recovery = await site.recovery(
            restarted, lambda: site.projector_reaches(there + 1), sizes.within_s
        )
        await asyncio.wait_for(publishing, sizes.within_s)
        last = await last_seq(nc)
        await site.until(lambda: site.projector_reaches(last), sizes.within_s, "all projected")
        lost, doubled = await site.archive_of(events)
        return Figures(
            "kill -9 nats-server", len(events), lost, doubled, recovery, await site.audit(),
            f"killed with {killed_at[0]} published and checkpoint {killed_at[1]}, publishing at "
            f"{PER_SECOND:,}/s; restarted on the same store; {_again(publisher.retries)}; "
            f"CW_EVENTS holds {last} messages for {len(events)} events; recovery until the "
            f"projector had projected an event published after the restart{_restarts(site)}",
        )  # fmt: skip


async def lock_passing(lab: Lab, sizes: Sizes) -> Figures:
    """Two projectors: the writer (A) is killed and the standby (B) takes the write lock; A
    comes back as the standby; B is killed and A takes the lock back."""
    async with lab.site("lock-passing") as site:
        await site.init()
        events = issues(sizes.events)
        a = site.service("projector", "projector-a", projector_batch=PROJECTOR_BATCH)
        b = site.service("projector", "projector-b", projector_batch=PROJECTOR_BATCH)

        one_waits = partial(write_locks, site, granted=False)
        a.start()
        await site.until(partial(write_locks, site, granted=True), sizes.within_s, "A holds it")
        b.start()
        await site.until(one_waits, sizes.within_s, "B waits for the lock")
        nc = await site.connect()
        takeovers = []
        killed = time.monotonic()
        half = len(events) // 2
        for holder, chunk in ((a, events[:half]), (b, events[half:])):
            # A backlog for each kill: the writer is killed as soon as it has committed a batch.
            before = await site.projector_checkpoint()
            last = await publish_pipelined(nc, chunk)
            await site.until(partial(site.projector_reaches, before + 1), sizes.within_s, "busy")
            at = await site.projector_checkpoint()
            # Restarted at once: the standby already waits, so it gets the lock first.
            holder.kill()
            killed = time.monotonic()
            holder.start()
            if at >= last:
                takeovers.append("(backlog drained before the kill)")
            elif await site.until(partial(site.projector_reaches, at + 1), sizes.within_s, "B"):
                takeovers.append(f"{time.monotonic() - killed:.1f} s")
            else:
                takeovers.append("never")
            await site.until(one_waits, sizes.within_s, "the old writer waits")
        recovery = await site.recovery(killed, lambda: site.projector_reaches(last), sizes.within_s)
        lost, doubled = await site.archive_of(events)
        return Figures(
            "write lock A → B → A", len(events), lost, doubled, recovery, await site.audit(),
            f"kill -9 of the writer twice; the standby projected again after "
            f"{' and '.join(takeovers)}; recovery from the second kill{_restarts(site)}",
        )  # fmt: skip


async def large_events(lab: Lab, sizes: Sizes) -> Figures:
    """A backlog of large events (``IssueFound`` of 6.3 KB and of 44 KB, within the contract),
    the projector killed once in its middle."""
    async with lab.site("large-events") as site:
        await site.init()
        events = [big_issue(i) for i in range(sizes.large_6k)]
        events += [big_issue(sizes.large_6k + i, evidence=50) for i in range(sizes.large_44k)]
        random.Random(7).shuffle(events)
        size = sum(len(encode_event(ev)) for ev in events)
        last = await publish_pipelined(await site.connect(), events, window=200)
        projector = site.service("projector", projector_batch="100")
        projector.start()
        kills = await kill_at_marks(
            site, projector, 1, site.projector_checkpoint, last, within=sizes.within_s
        )
        recovery = await site.recovery(
            kills.restarted, lambda: site.projector_reaches(last), sizes.within_s
        )
        lost, doubled = await site.archive_of(events)
        return Figures(
            "large events (6 KB, 44 KB)", len(events), lost, doubled, recovery,
            await site.audit(),
            f"{sizes.large_6k} of 6.3 KB and {sizes.large_44k} of 44 KB, {size / 1e6:.0f} MB; "
            f"{kills.say('(checkpoint)')}; recovery from the restart{_restarts(site)}",
        )  # fmt: skip


async def rebuild_under_load(lab: Lab, sizes: Sizes) -> Figures:
    """``cw rebuild`` while the projector runs and events keep arriving."""
    async with lab.site("rebuild") as site:
        await site.init()
        # The stream to replay, then as many again at most, arriving while the rebuild runs.
        events = issues(sizes.events * 3 // 2)
        backlog = sizes.events
        nc = await site.connect()
        await publish_pipelined(nc, events[:backlog])
        site.service("projector").start()
        await site.until(lambda: site.projector_reaches(backlog), sizes.within_s, "backlog")
        started = time.monotonic()
        rebuilt_done = asyncio.Event()
        publisher = Publisher(nc, per_second=PER_SECOND)
        load = asyncio.ensure_future(publisher.publish(events[backlog:], until=rebuilt_done))
        rebuilt = await asyncio.to_thread(cw, site.env(), "rebuild")
        ended = time.monotonic()
        rebuilt_done.set()
        await asyncio.wait_for(load, sizes.within_s)
        events = events[: backlog + publisher.acknowledged]
        last = await last_seq(nc)
        recovery = await site.recovery(ended, lambda: site.projector_reaches(last), sizes.within_s)
        lost, doubled = await site.archive_of(events)
        said = (rebuilt.stdout + rebuilt.stderr).strip().splitlines()
        return Figures(
            "cw rebuild under load", len(events), lost, doubled, recovery, await site.audit(),
            f"cw rebuild exit {rebuilt.returncode} after {ended - started:.1f} s "
            f"({said[-1] if said else ''}) over a stream of {backlog}, while "
            f"{len(events) - backlog} more arrived at {PER_SECOND:,}/s; recovery from the "
            f"swap{_restarts(site)}",
        )  # fmt: skip


async def hostile_input(lab: Lab, sizes: Sizes) -> Figures:
    """Hostile messages published raw to ``cw.events.>`` (bypassing ``cw publish``) mixed
    with as many valid events: each hostile one must end as a dead letter with a reason, each
    valid one in the read model."""
    async with lab.site("hostile") as site:
        await site.init()
        valid = issues(sizes.hostile, prefix="OK")
        mixed: list[tuple[str, bytes, Event | None]] = [
            (ev.subject, encode_event(ev), ev) for ev in valid
        ]
        mixed += [(s, p, None) for s, p in hostile_messages(sizes.hostile, seed=20231125)]
        random.Random(5).shuffle(mixed)
        nc = await site.connect()
        site.service("projector").start()
        seqs, refused = await publish_raw(nc, [(s, p) for s, p, _ in mixed])
        published_at = time.monotonic()
        last = await last_seq(nc)
        recovery = await site.recovery(
            published_at, lambda: site.projector_reaches(last), sizes.within_s
        )
        letters = Counter[int]()
        reasons = {}
        named = Counter[str]()
        for letter in await dead_letters(nc):
            if letter.original_stream_seq is not None and letter.stage == "projector":
                letters[letter.original_stream_seq] += 1
                reasons[letter.original_stream_seq] = letter.reason
                # "(event)": the message as a whole (not JSON, not an object, unreadable).
                named[letter.field or "(no field)"] += 1
        archived = Counter(int(r["stream_seq"]) for r in await site.db.fetch(ARCHIVED_SEQS))
        hostile_seqs = [
            seq for seq, (_, _, ev) in zip(seqs, mixed, strict=True) if ev is None and seq
        ]
        lost_valid, doubled = await site.archive_of(valid)
        accepted = sum(1 for seq in hostile_seqs if archived[seq])
        # Another outcome the projector recorded (say, a copy of a valid event: "duplicate").
        facts = await read_model_facts(site.db, 1, last)
        other = Counter(o.outcome for o in facts.outcomes if o.outcome != DEAD_LETTERED)
        recorded = {o.seq for o in facts.outcomes if o.outcome != DEAD_LETTERED}
        unexplained = sum(
            1 for seq in hostile_seqs
            if not archived[seq] and not reasons.get(seq) and seq not in recorded
        )  # fmt: skip
        doubled += sum(n - 1 for n in letters.values())
        top = named.most_common(4)
        return Figures(
            f"{sizes.hostile:,} hostile messages", len(mixed), lost_valid + unexplained, doubled,
            recovery, await site.audit(),
            f"{len(hostile_seqs)} hostile stored ({refused} refused by the server), "
            f"{sum(1 for s in hostile_seqs if reasons.get(s))} dead letters with a reason, "
            f"{accepted} accepted, {_list(f'{n} {o}' for o, n in other.items()) or 'none'} with "
            f"another outcome; {len(valid)} valid, {lost_valid} not projected; fields most "
            f"named ((event): the whole message): "
            f"{', '.join(f'{k} {n}' for k, n in top)}; recovery = drain after the last publish",
        )  # fmt: skip


CASES: dict[str, Callable[[Lab, Sizes], Awaitable[Figures]]] = {
    "projector": projector_kills,
    "reminders": reminders_kills,
    "notifier": notifier_kills,
    "postgres-cut": postgres_cut,
    "nats-kill": nats_kill,
    "lock": lock_passing,
    "large": large_events,
    "rebuild": rebuild_under_load,
    "hostile": hostile_input,
}


# Publishing under faults ----------------------------------------------------------------


class Publisher:
    """Publishes events with ``Nats-Msg-Id`` at about ``per_second``, a window at a time; a
    window that fails or is not acknowledged in time is published again (the server drops what
    it already has), so it publishes through a server's outage."""

    def __init__(self, nc: Client, per_second: int, window: int = 100) -> None:
        self.nc, self.per_second, self.window = nc, per_second, window
        self.acknowledged = 0
        self.retries: list[str] = []
        """The kind of each failure that made a window go again."""

    async def publish(self, events: Sequence[Event], until: asyncio.Event | None = None) -> None:
        """Publish ``events``, or those until ``until`` is set."""
        js = self.nc.jetstream()
        for start in range(0, len(events), self.window):
            if until is not None and until.is_set():
                return
            began = time.monotonic()
            chunk = events[start : start + self.window]
            while True:
                try:
                    futures = [
                        await js.publish_async(
                            ev.subject, encode_event(ev), headers={MSG_ID: str(ev.event_id)}
                        )
                        for ev in chunk
                    ]
                    await asyncio.wait_for(asyncio.gather(*futures), 5)
                    break
                except (TimeoutError, nats.errors.Error, OSError) as exc:
                    self.retries.append(type(exc).__name__)
                    await asyncio.sleep(0.2)
            self.acknowledged += len(chunk)
            # Pacing: the load is a rate, not a burst.
            await asyncio.sleep(max(0.0, len(chunk) / self.per_second - time.monotonic() + began))


async def publish_raw(
    nc: Client, messages: Sequence[tuple[str, bytes]], window: int = 1000
) -> tuple[list[int | None], int]:
    """Publish ``messages`` as they are, no header; the stream sequence of each (None when the
    server refused it) and how many were refused."""
    js = nc.jetstream()
    seqs: list[int | None] = []
    for start in range(0, len(messages), window):
        futures = [await js.publish_async(s, p) for s, p in messages[start : start + window]]
        for result in await asyncio.gather(*futures, return_exceptions=True):
            seqs.append(None if isinstance(result, BaseException) else int(result.seq))
    return seqs, sum(1 for s in seqs if s is None)


# Reading --------------------------------------------------------------------------------


async def _messages(nc: Client, stream: str) -> int:
    try:
        info = await nc.jetstream().stream_info(stream)
    except NotFoundError:
        return 0
    return int(info.state.messages)


async def _quiet(exc: Exception) -> None:
    """A client's connection errors while a case has the server down are the fault itself."""
    log.debug("nats: %r", exc)


async def write_locks(site: Site, *, granted: bool) -> bool:
    """Whether a projector holds (``granted``) or waits for the write lock."""
    return any(r["granted"] is granted for r in await site.db.fetch(WRITE_LOCKS))


def _list(values: Iterable[object]) -> str:
    return ", ".join(str(v) for v in values)


def _again(retries: list[str]) -> str:
    if not retries:
        return "the publisher never had to send a window again"
    return f"the publisher sent {len(retries)} window(s) again ({_list(sorted(set(retries)))})"


def _restarts(site: Site) -> str:
    if not site.restarts:
        return ""
    return f"; restarted by the supervisor: {_list(site.restarts)}"
