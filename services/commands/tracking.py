"""``cw tracking reset reminders|notifier``: a consumer of a replaced stream starts again from
that stream's start.

A consumer whose stream was replaced (``services.consumer.identity``: recreated, restored from
an older backup, another server's) stalls and takes nothing. When the new stream holds the whole
history under new sequences, its tracking row is set back to checkpoint 0 with no message id:
the running service passes its next check (nothing taken yet) and replays the stream, and its
ids keep it from doing anything twice (the reminders' ``seen_events`` by event id, the
notifier's ledger by reminder id). The projector's way back is ``cw rebuild``.

The row is read and locked, the stream checked at its checkpoint, and the row reset, in one
transaction: a batch the service commits meanwhile waits, and cannot slip in between.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg
from nats.js.errors import NotFoundError

from services.common.connect import (
    NatsAccess,
    Unreachable,
    connect_command,
    connect_postgres_command,
)
from services.common.runtime import run
from services.common.settings import Settings
from services.common.streams import EVENTS_STREAM, REMINDERS_STREAM
from services.consumer.identity import RECHECK_S, stream_replaced
from services.consumer.jetstream import stream_place
from services.consumer.lease import Conn
from services.consumer.model import Tracked
from services.notifier.adapters import postgres as notifier_store
from services.reminders.adapters import postgres as reminders_store

EXIT_NOTHING_TO_RESET = 1
EXIT_UNAVAILABLE = 2


class NothingToReset(Exception):
    """The stream is the one the consumer followed: a reset would replay it for nothing."""


class TrackingUnavailable(Exception):
    """A server cannot be reached, or the stream or the tracking table does not exist."""


@dataclass(frozen=True, slots=True)
class TrackedConsumer:
    """A consumer whose tracking row ``cw tracking reset`` may set back."""

    name: str
    stream: str
    key: Callable[[Settings], str]
    """Its tracking row's key (the notifier's is its durable, ``CW_NOTIFIER_DURABLE``)."""
    lock: Callable[[Conn, str], Awaitable[Tracked]]
    reset: Callable[[Conn, str], Awaitable[None]]


CONSUMERS = {
    c.name: c
    for c in (
        TrackedConsumer(
            "reminders",
            EVENTS_STREAM,
            lambda _: reminders_store.CONSUMER,
            reminders_store.lock_tracking,
            reminders_store.reset_tracking,
        ),
        TrackedConsumer(
            "notifier",
            REMINDERS_STREAM,
            lambda settings: settings.notifier_durable,
            notifier_store.lock_tracking,
            notifier_store.reset_tracking,
        ),
    )
}


async def reset(settings: Settings, name: str, *, force: bool = False) -> str:
    """Set ``name``'s tracking row back to the stream's start when its stream is not the one
    it followed (or ``force``); one line saying what was done. Raises ``NothingToReset`` or
    ``TrackingUnavailable``."""
    consumer = CONSUMERS[name]
    try:
        nc = await connect_command(NatsAccess.from_settings(settings), name="cw-tracking")
    except Unreachable as exc:
        raise TrackingUnavailable(str(exc)) from None
    try:
        conn = await connect_postgres_command(settings.database_url)
    except Unreachable as exc:
        await nc.close()
        raise TrackingUnavailable(str(exc)) from None
    try:
        async with conn.transaction():
            tracked = await consumer.lock(conn, consumer.key(settings))
            place = await stream_place(nc.jetstream(), consumer.stream, tracked.seq)
            problem = stream_replaced(name, tracked, place)
            was = _where(tracked)
            if problem is None and not force:
                raise NothingToReset(
                    f"nothing to reset: {consumer.stream} is the stream the {name} followed (its "
                    f"checkpoint is {was}, and {consumer.stream} holds it); --force resets all "
                    "the same"
                )
            await consumer.reset(conn, consumer.key(settings))
    except NotFoundError:
        raise TrackingUnavailable(
            f"stream {consumer.stream} does not exist: run `cw init` first"
        ) from None
    except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError) as exc:
        raise TrackingUnavailable(f"{exc}: run `cw init` first") from None
    finally:
        await conn.close()
        await nc.close()
    why = problem or f"{consumer.stream} may be the stream it followed; reset with --force"
    return (
        f"tracking reset: the {name} replays {consumer.stream} from its start at its next check "
        f"(within {RECHECK_S:.0f} s); its checkpoint was {was}: {why}"
    )


def _where(tracked: Tracked) -> str:
    if tracked.seq <= 0:
        return "sequence 0 (nothing taken yet)"
    if tracked.message_id is None:
        return f"sequence {tracked.seq} (its message's id not recorded)"
    return f"message {tracked.message_id} at sequence {tracked.seq}"


def _reset(args: argparse.Namespace) -> int:
    try:
        line = run(reset(Settings(), args.consumer, force=args.force))
    except NothingToReset as exc:
        print(f"cw tracking reset: {exc}", file=sys.stderr)
        return EXIT_NOTHING_TO_RESET
    except TrackingUnavailable as exc:
        print(f"cw tracking reset: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    print(line)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tracking = sub.add_parser(
        "tracking",
        help="a consumer's tracking row (its checkpoint): cw tracking reset",
        description="The consumers' tracking rows: where each stands in its stream, and the id "
        "of the message there.",
    )
    tracking_sub = tracking.add_subparsers(
        dest="tracking_command", required=True, metavar="COMMAND", help="reset"
    )
    names = sorted(CONSUMERS)
    p = tracking_sub.add_parser(
        "reset",
        help="replay a replaced stream from its start (reminders, notifier)",
        description="When the stream a consumer reads is not the one it followed (the reminders "
        "read CW_EVENTS, the notifier CW_REMINDERS; recreated, or another server's) and holds "
        "the whole history under new sequences: set its checkpoint back to 0 and forget the id "
        "of the message there, so that the service, stalled on that stream, replays it from its "
        "start at its next check (every 30 s) and resumes by itself. Event ids (the reminders) "
        "and reminder ids (the notifier's ledger) keep it from doing anything twice. First "
        "checks the tracking row against the stream, as the service does: a row that matches "
        "it is refused (nothing to reset). Restoring the stream from its backup comes first "
        "(docs/operations.md); the projector's way back is cw rebuild.",
        epilog="exit status: 0 reset (one line: the old checkpoint and message id); 1 nothing to "
        "reset, the stream is the one the consumer followed; 2 NATS or PostgreSQL could not be "
        "reached, or the stream or the tracking table does not exist (cw init)",
    )
    p.add_argument("consumer", choices=names, metavar="CONSUMER", help=" | ".join(names))
    p.add_argument(
        "--force",
        action="store_true",
        help="reset even when the stream is the one followed (stop the service first: a "
        "running one goes on from where its consumer is)",
    )
    p.set_defaults(handler=_reset)
