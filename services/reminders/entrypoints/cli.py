"""The reminders service's entrypoint: its line in the registry of services (``cw run
reminders``, ``cw init``, ``cw dev``)."""

from __future__ import annotations

import asyncio
import logging

from services.common.settings import Settings
from services.consumer.health import Health
from services.consumer.ports import Fenced
from services.registry import RunnableService, setting_name, start_metrics_server
from services.reminders import bootstrap
from services.reminders.adapters.metrics import ReminderMetrics

METRICS_SETTING = "reminders_metrics_port"


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    """The reminders service until ``stop`` is set, with its ``/metrics``."""
    metrics = ReminderMetrics()
    health = Health(
        stall_after_s=settings.stall_after.total_seconds(),
        slow_after_s=settings.slow_after.total_seconds(),
    )
    url = start_metrics_server(
        settings, metrics.registry, "reminders", setting_name(METRICS_SETTING), health.report
    )
    if url is not None:
        logging.getLogger("cw.reminders").info(
            "metrics on %s, health on %s", url, url.removesuffix("/metrics") + "/healthz"
        )
    await bootstrap.run_reminders(settings, metrics, stop, health=health)


REMINDERS = RunnableService(
    name="reminders",
    summary="timers from the issues' lifecycle; every due reminder once, on time, to CW_REMINDERS",
    run=serve,
    ensure=bootstrap.ensure_reminders,
    metrics_port=9465,
    metrics_setting=METRICS_SETTING,
    exits={Fenced: 75},  # another one took the write lease; a restart makes this one standby
)
