"""Helpers for the reminders' tests: a campaign file in seconds, the service in this process, and
what ``CW_REMINDERS`` holds."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from nats.aio.client import Client
from nats.js.errors import NotFoundError

from contracts.reminders import Reminder
from contracts.wire import MSG_ID, REMINDERS_STREAM
from services.common.settings import Settings
from services.reminders.adapters.metrics import ReminderMetrics
from services.reminders.bootstrap import run_reminders
from tests.support.in_process import service_in_process

TZ = ZoneInfo("Asia/Shanghai")


def campaign_file(
    folder: Path,
    *,
    order_within: str = "2s",
    due_soon: tuple[str, ...] = ("3s", "1s"),
    escalate_every: str = "1s",
    escalate_max: int = 2,
    look_back_after: str = "2s",
    stale_after: str = "1h",
    digest_at: datetime | str = "08:30",
) -> Path:
    """A campaign whose reminders come within seconds; ``digest_at`` a local moment or HH:MM."""
    at = digest_at if isinstance(digest_at, str) else digest_at.astimezone(TZ).strftime("%H:%M:%S")
    soon = ", ".join(f'"{d}"' for d in due_soon)
    path = folder / "campaign.toml"
    path.write_text(
        f"""name = "测试"
timezone = "Asia/Shanghai"
districts = [{{ code = "320703", name = "连云区" }}, {{ code = "320706", name = "海州区" }}]

[[phases]]
name = "self_check"
start = "2020-01-01"

[reminders]
order_within = "{order_within}"
due_soon = [{soon}]
escalate_every = "{escalate_every}"
escalate_max = {escalate_max}
look_back_after = "{look_back_after}"
stale_after = "{stale_after}"
digest_at = "{at}"

[reminders.contacts]
deputy_head = {{ name = "李分管", phone = "13900000001" }}
head = {{ name = "张局长", phone = "13900000002" }}
""",
        encoding="utf-8",
    )
    return path


@dataclass(frozen=True)
class Published:
    reminder: Reminder
    msg_id: str
    subject: str
    seq: int


async def published(nc: Client) -> list[Published]:
    """Every message in ``CW_REMINDERS``, in stream order."""
    js = nc.jetstream()
    try:
        info = await js.stream_info(REMINDERS_STREAM)
    except NotFoundError:
        return []
    out: list[Published] = []
    if not info.state.messages:
        return out
    for seq in range(int(info.state.first_seq), int(info.state.last_seq) + 1):
        m = await js.get_msg(REMINDERS_STREAM, seq)
        reminder = Reminder.model_validate_json(m.data or b"")
        out.append(Published(reminder, (m.headers or {}).get(MSG_ID, ""), m.subject or "", seq))
    return out


def reminders_in_process(
    settings: Settings, metrics: ReminderMetrics | None = None
) -> contextlib.AbstractAsyncContextManager[asyncio.Task[None]]:
    """``run_reminders`` (what ``cw run reminders`` runs) as a task; stopped on the way out."""
    return service_in_process(run_reminders, settings, metrics or ReminderMetrics())


def soon(seconds: float) -> datetime:
    """A moment ``seconds`` from now, in China Standard Time, to the millisecond."""
    moment = datetime.now(TZ) + timedelta(seconds=seconds)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)
