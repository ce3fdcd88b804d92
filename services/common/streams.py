"""The JetStream streams of the system, and how ``cw init`` creates them.

Streams are created here with nats-py, never declared by FastStream: ``JStream(declare=True)``
would overwrite a stream an operator has tuned (replicas, limits) with FastStream's idea of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

EVENTS_STREAM = "CW_EVENTS"
EVENTS_SUBJECTS = "cw.events.>"
REMINDERS_STREAM = "CW_REMINDERS"
REMINDERS_SUBJECTS = "cw.reminders.>"
DEAD_LETTERS_STREAM = "CW_DEAD_LETTERS"
DEAD_LETTERS_SUBJECTS = "cw.dlq.>"


def dead_letter_subject(stage: str) -> str:
    """Where ``stage`` (``projector``, ``intake``, ...) puts what it rejects."""
    return f"cw.dlq.{stage}"


@dataclass(frozen=True, slots=True)
class StreamPlan:
    config: StreamConfig
    why: str


def stream_plans(
    events_duplicate_window: timedelta = timedelta(minutes=5),
    dead_letter_duplicate_window: timedelta = timedelta(hours=24),
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
                max_msg_size=1024 * 1024,
                duplicate_window=events_duplicate_window.total_seconds(),
                num_replicas=1,
            ),
            "system of record: file storage, no age limit",
        ),
        StreamPlan(
            StreamConfig(
                name=REMINDERS_STREAM,
                description="chuangwei reminders for notification consumers",
                subjects=[REMINDERS_SUBJECTS],
                storage=StorageType.FILE,
                retention=RetentionPolicy.LIMITS,
                max_age=timedelta(days=90).total_seconds(),
                duplicate_window=timedelta(hours=1).total_seconds(),
                num_replicas=1,
            ),
            "reminders kept 90 days",
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
    """Create missing streams; leave existing ones exactly as an operator left them."""
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
        differs = _differences(plan.config, info.config)
        note = f"; differs from the default in {', '.join(differs)} (kept)" if differs else ""
        report.append(f"stream {name}: exists, left unchanged{note}")
    return report


def _differences(want: StreamConfig, have: StreamConfig) -> list[str]:
    out = []
    for attr in ("subjects", "storage", "max_age", "duplicate_window", "num_replicas"):
        if getattr(want, attr) != getattr(have, attr):
            out.append(attr)
    return out
