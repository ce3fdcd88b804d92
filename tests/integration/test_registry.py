"""``cw init`` ensures what each registered service needs, in the registry's order."""

from __future__ import annotations

import asyncio

import pytest

from services import registry
from services.common.entrypoints import initialise
from services.common.settings import Settings
from services.registry import RunnableService

pytestmark = pytest.mark.integration


async def _never_run(settings: Settings, stop: asyncio.Event) -> None:
    raise AssertionError("cw init runs no service")


async def test_init_ensures_every_registered_service(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    ensured: list[str] = []

    async def ensure(s: Settings) -> list[str]:
        ensured.append(s.database_url)
        return ["tally: tables ready"]

    second = RunnableService("tally", "fake", _never_run, ensure=ensure, metrics_port=9475)
    real = registry.all_services()
    monkeypatch.setattr(registry, "all_services", lambda: (*real, second))

    lines = await initialise(settings)
    assert ensured == [settings.database_url]
    assert lines[-1] == "tally: tables ready"
    assert any("CW_EVENTS" in line for line in lines[:-1])  # the streams, then the projector's
    assert len(lines) > 4
