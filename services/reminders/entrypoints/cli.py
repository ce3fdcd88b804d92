"""The reminders service's entrypoint: its line in the registry of services (``cw run
reminders``, ``cw init``, ``cw dev``)."""

from __future__ import annotations

import asyncio

from services.common.settings import Settings
from services.consumer.ports import Fenced
from services.registry import RunnableService, setting_name, start_operator_server
from services.reminders import bootstrap
from services.reminders.adapters.metrics import ReminderMetrics

METRICS_SETTING = "reminders_metrics_port"


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    """The reminders service until ``stop`` is set, with its ``/metrics``."""
    metrics = ReminderMetrics()
    health = start_operator_server(
        settings, metrics.registry, "reminders", setting_name(METRICS_SETTING)
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
