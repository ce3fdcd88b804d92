"""The one registry of long-running services: ``cw run``, ``cw init`` and ``cw dev`` read it.

A service is a folder (the projector's shape: ``domain/``, ``adapters/``, ``bootstrap.py``,
``entrypoints/``) and one line in :func:`all_services`. Its entrypoint declares a
:class:`RunnableService`: its name, its runner (the loop, given the settings and a stop event;
the service sets up its own metrics there, with :func:`start_metrics_server`), what ``cw init``
must create for it, and the metrics port it uses unless ``CW_METRICS_PORT`` says otherwise.
"""

from __future__ import annotations

import asyncio
import errno
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

from services.common.campaign import load_campaign
from services.common.http_server import AlertsEndpoint, HealthReport, serve
from services.common.settings import Settings
from services.consumer.health import Health

Runner = Callable[[Settings, asyncio.Event], Awaitable[None]]
"""Runs the service until the event is set (SIGINT/SIGTERM), then returns."""
Ensure = Callable[[Settings], Awaitable[list[str]]]
"""``cw init``'s part for the service: creates what is missing; one line per object."""

METRICS_PORT_SETTING = "CW_METRICS_PORT"


@dataclass(frozen=True, slots=True)
class RunnableService:
    name: str
    summary: str
    run: Runner
    ensure: Ensure | None = None
    metrics_port: int = 0
    """The default ``/metrics`` port of ``cw run <name>`` (its ``metrics_setting`` wins; 0:
    off)."""
    metrics_setting: str = "metrics_port"
    """The setting (a field of ``Settings``) that sets the service's own port: the projector's
    is ``CW_METRICS_PORT``, another service has its own (``CW_NOTIFIER_METRICS_PORT``)."""
    needs: str | None = None
    """A setting without which ``cw dev`` does not start the service (the notifier runs only
    with a ``CW_NOTIFY_FILE``); ``cw run`` starts it anyway and says what is missing."""
    exits: Mapping[type[Exception], int] = field(default_factory=dict)
    """Errors that end the service with an exit status of their own, said in one line (the
    projector's ``Fenced``: 75, another one took over and a restart makes this one standby)."""


def all_services() -> tuple[RunnableService, ...]:
    """Every long-running service, in the order ``cw init`` ensures and ``cw dev`` starts them."""
    # Imported here: a service's entrypoint imports this module for RunnableService.
    from services.notifier.entrypoints.cli import NOTIFIER  # noqa: PLC0415
    from services.projector.entrypoints.cli import PROJECTOR  # noqa: PLC0415
    from services.reminders.entrypoints.cli import REMINDERS  # noqa: PLC0415

    return (PROJECTOR, REMINDERS, NOTIFIER)


def by_name(name: str) -> RunnableService:
    for service in all_services():
        if service.name == name:
            return service
    raise KeyError(name)


def setting_name(field: str) -> str:
    """The environment variable of a ``Settings`` field."""
    return f"CW_{field.upper()}"


def service_settings(service: RunnableService, settings: Settings) -> Settings:
    """``settings`` with the service's own metrics port, unless its setting was given."""
    field = service.metrics_setting
    own = getattr(settings, field) if field in settings.model_fields_set else None
    return settings.model_copy(
        update={"metrics_port": service.metrics_port if own is None else own}
    )


def wanted(service: RunnableService, settings: Settings) -> bool:
    """Whether ``cw dev`` runs the service: the setting it needs is set."""
    return service.needs is None or bool(getattr(settings, service.needs))


class MetricsPortTaken(Exception):
    """The ``/metrics`` port is in use by another process."""


def start_metrics_server(
    settings: Settings,
    registry: CollectorRegistry,
    name: str,
    setting: str = METRICS_PORT_SETTING,
    health: HealthReport | None = None,
    *,
    alerts: AlertsEndpoint | None = None,
) -> str | None:
    """Serve ``registry`` on ``CW_METRICS_HOST:CW_METRICS_PORT`` as ``/metrics``, and ``health``
    as ``/healthz``; the metrics URL, ``None`` when off.

    Raises :class:`MetricsPortTaken`, naming ``setting``, when the port is in use."""
    if not settings.metrics_port:
        return None
    try:
        serve(settings.metrics_host, settings.metrics_port, registry, health, alerts)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        raise MetricsPortTaken(
            f"the {name}'s metrics port {settings.metrics_host}:{settings.metrics_port} is taken"
            f" by another process; set {setting} to a free port"
            f" ({setting}=0 turns metrics off)"
        ) from None
    return f"http://{settings.metrics_host}:{settings.metrics_port}/metrics"


def start_operator_server(
    settings: Settings,
    registry: CollectorRegistry,
    name: str,
    setting: str = METRICS_PORT_SETTING,
    alerts: AlertsEndpoint | None = None,
) -> Health:
    """A service's ``/metrics`` and ``/healthz`` on its port (said in the log); the ``Health``
    the service then keeps up to date (its loop and watcher feed it)."""
    health = Health(
        stall_after_s=settings.stall_after.total_seconds(),
        slow_after_s=settings.slow_after.total_seconds(),
        zone=load_campaign(settings.campaign_file).timezone,
    )
    url = start_metrics_server(settings, registry, name, setting, health.report, alerts=alerts)
    if url is not None:
        logging.getLogger(f"cw.{name}").info(
            "metrics on %s, health on %s", url, url.removesuffix("/metrics") + "/healthz"
        )
    return health
