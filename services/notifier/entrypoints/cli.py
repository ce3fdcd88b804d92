"""The notifier's entrypoint: its line in the registry of services (``cw run notifier``,
``cw init``, and ``cw dev`` when ``CW_NOTIFY_FILE`` is set)."""

from __future__ import annotations

import asyncio
import logging

from services.common.settings import Settings
from services.consumer.ports import Fenced
from services.notifier import bootstrap
from services.notifier.adapters.metrics import NotifierMetrics
from services.notifier.domain.targets import NotifyFileInvalid
from services.notifier.runner import AlertInbox
from services.registry import RunnableService, setting_name, start_operator_server

METRICS_SETTING = "notifier_metrics_port"


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    """The notifier until ``stop`` is set, with its ``/metrics``, ``/healthz`` and ``POST
    /alerts`` (Alertmanager's webhook) on ``CW_NOTIFIER_METRICS_PORT``."""
    targets = bootstrap.load_targets(settings)  # a bad file stops here, before any server
    metrics = NotifierMetrics()
    inbox = AlertInbox()
    health = start_operator_server(
        settings, metrics.registry, "notifier", setting_name(METRICS_SETTING), inbox.post
    )
    alerting = [t.name for t in targets if t.alerts]
    logging.getLogger("cw.notifier").info(
        "%s targets; alerts (POST /alerts) to %s", len(targets), ", ".join(alerting) or "none"
    )
    await bootstrap.run_notifier(settings, metrics, stop, health, inbox)


NOTIFIER = RunnableService(
    name="notifier",
    summary="CW_REMINDERS to the DingTalk, WeCom and webhook targets of CW_NOTIFY_FILE",
    run=serve,
    ensure=bootstrap.ensure_ledger,
    metrics_port=9466,
    metrics_setting=METRICS_SETTING,
    needs="notify_file",
    # 75: another notifier took the write lock (a restart makes this one its standby);
    # 78 (EX_CONFIG): the notify file cannot be used, said in one line naming the field.
    exits={Fenced: 75, NotifyFileInvalid: 78},
)
