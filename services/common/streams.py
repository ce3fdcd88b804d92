"""How ``cw init`` creates the JetStream streams of the system (their names are wire contract:
``contracts/wire.py``; they are imported here under their old names too).

Streams are created here with nats-py, never declared by FastStream: ``JStream(declare=True)``
would overwrite a stream an operator has tuned (replicas, limits) with FastStream's idea of it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta

from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from contracts.wire import (
    DEAD_LETTERS_STREAM,
    DEAD_LETTERS_SUBJECTS,
    EVENTS_STREAM,
    EVENTS_SUBJECTS,
    REMINDERS_STREAM,
    REMINDERS_SUBJECTS,
    dead_letter_subject,
)
from services.common.durations import format_duration

__all__ = [  # the names are re-exported for modules that still import them from here
    "DEAD_LETTERS_STREAM",
    "DEAD_LETTERS_SUBJECTS",
    "DEAD_LETTER_HEADROOM",
    "EVENTS_MAX_MSG_SIZE",
    "EVENTS_STREAM",
    "EVENTS_SUBJECTS",
    "NATS_MAX_PAYLOAD",
    "REMINDERS_STREAM",
    "REMINDERS_SUBJECTS",
    "StreamPlan",
    "dead_letter_subject",
    "ensure_streams",
    "stream_plans",
]


NATS_MAX_PAYLOAD = 1024 * 1024
"""The server's default ``max_payload``: no message, dead letters included, can be larger."""
DEAD_LETTER_HEADROOM = 16 * 1024
"""Room a dead letter needs beyond the rejected message: its ``Cw-Dlq-*`` headers (about 250
bytes, plus a reason of up to 2,000 characters written as \\uXXXX escapes) and the original
headers it keeps."""
EVENTS_MAX_MSG_SIZE = NATS_MAX_PAYLOAD - DEAD_LETTER_HEADROOM
"""``max_msg_size`` of ``CW_EVENTS``: whatever it stores can be dead-lettered with its bytes."""


@dataclass(frozen=True, slots=True)
class StreamPlan:
    config: StreamConfig
    why: str
    max_msg_size_ceiling: int | None = None
    """If set, an existing stream allowing larger messages (or any size) is brought down to it:
    the one setting ``cw init`` changes on a stream an operator may have tuned."""
    ceiling_why: str = ""
    keeps_duplicate_window: bool = False
    """If set, an existing stream's ``duplicate_window`` is brought to the plan's (and said):
    what a publisher's exactly-once relies on is not left to chance."""
    window_why: str = ""


def stream_plans(
    events_duplicate_window: timedelta = timedelta(minutes=5),
    dead_letter_duplicate_window: timedelta = timedelta(hours=24),
    reminders_duplicate_window: timedelta = timedelta(hours=24),
) -> list[StreamPlan]:
    return [
        StreamPlan(
            StreamConfig(
                name=EVENTS_STREAM,
                description="chuangwei events: the system of record; never expires",
                subjects=[EVENTS_SUBJECTS],
                storage=StorageType.FILE,
                retention=RetentionPolicy.LIMITS,
                discard=DiscardPolicy.NEW,
                max_age=0,
                max_msgs=-1,
                max_bytes=-1,
                max_msg_size=EVENTS_MAX_MSG_SIZE,
                duplicate_window=events_duplicate_window.total_seconds(),
                num_replicas=1,
            ),
            "system of record: file storage, no age limit",
            max_msg_size_ceiling=EVENTS_MAX_MSG_SIZE,
            ceiling_why="so that every dead letter fits",
        ),
        StreamPlan(
            StreamConfig(
                name=REMINDERS_STREAM,
                description="chuangwei reminders for notification consumers",
                subjects=[REMINDERS_SUBJECTS],
                storage=StorageType.FILE,
                retention=RetentionPolicy.LIMITS,
                max_age=timedelta(days=90).total_seconds(),
                duplicate_window=reminders_duplicate_window.total_seconds(),
                num_replicas=1,
            ),
            "reminders kept 90 days",
            keeps_duplicate_window=True,
            window_why="(CW_REMINDERS_DUPLICATE_WINDOW) so that a reminder published again "
            "after a crash is dropped as a duplicate",
        ),
        StreamPlan(
            StreamConfig(
                name=DEAD_LETTERS_STREAM,
                description="chuangwei rejected input, with reasons; see cw dlq",
                subjects=[DEAD_LETTERS_SUBJECTS],
                storage=StorageType.FILE,
                retention=RetentionPolicy.LIMITS,
                max_age=0,
                duplicate_window=dead_letter_duplicate_window.total_seconds(),
                num_replicas=1,
            ),
            "dead letters kept until an operator replays or deletes them",
        ),
    ]


async def ensure_streams(js: JetStreamContext, plans: list[StreamPlan]) -> list[str]:
    """Create missing streams; leave existing ones as an operator left them, except for a
    ``max_msg_size`` above a plan's ceiling, which is lowered (and said)."""
    report: list[str] = []
    for plan in plans:
        name = plan.config.name
        assert name is not None
        try:
            info = await js.stream_info(name)
        except NotFoundError:
            await js.add_stream(plan.config)
            report.append(f"stream {name}: created ({plan.why})")
            continue
        have = info.config
        changed = ""
        ceiling = plan.max_msg_size_ceiling
        if ceiling is not None and _allows_more(have.max_msg_size, ceiling):
            before = str(have.max_msg_size)
            if _unlimited(have.max_msg_size):
                before = f"unlimited ({have.max_msg_size})"
            have = (await js.update_stream(replace(have, max_msg_size=ceiling))).config
            changed = f"max_msg_size lowered from {before} to {ceiling} {plan.ceiling_why}"
        window = plan.config.duplicate_window
        if (
            plan.keeps_duplicate_window
            and window
            and not _same_seconds(have.duplicate_window, window)
        ):
            before_s = _seconds_text(have.duplicate_window)
            have = (await js.update_stream(replace(have, duplicate_window=window))).config
            changed = "; ".join(filter(None, [
                changed,
                f"duplicate_window changed from {before_s} to {_seconds_text(window)} "
                f"{plan.window_why}",
            ]))  # fmt: skip
        differs = _differences(plan.config, have)
        note = f"differs from the default in {', '.join(differs)} (kept)" if differs else ""
        if changed:
            report.append(f"stream {name}: " + "; ".join(filter(None, [changed, note])))
        else:
            report.append(f"stream {name}: exists, left unchanged" + (f"; {note}" if note else ""))
    return report


def _same_seconds(a: float | None, b: float) -> bool:
    return a is not None and abs(a - b) < 0.001


def _seconds_text(seconds: float | None) -> str:
    if seconds is None:
        return "unset"
    return format_duration(timedelta(seconds=seconds))


def _unlimited(size: int | None) -> bool:
    return size is None or size <= 0


def _allows_more(size: int | None, ceiling: int) -> bool:
    return _unlimited(size) or (size is not None and size > ceiling)


def _differences(want: StreamConfig, have: StreamConfig) -> list[str]:
    out = []
    for attr in ("subjects", "storage", "max_age", "duplicate_window", "num_replicas"):
        if getattr(want, attr) != getattr(have, attr):
            out.append(attr)
    return out
