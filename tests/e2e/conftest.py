"""Fixtures of the e2e tier: ``cw`` processes against the run's own servers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.devstack.system import free_port
from tests.support.processes import ProjectorProcess


@pytest.fixture
def env(nats_url: str, database_url: str) -> dict[str, str]:
    """A ``cw`` process's environment: the test's servers, its own metrics port, short pulls."""
    return {
        **os.environ,
        "CW_NATS_URL": nats_url,
        "CW_DATABASE_URL": database_url,
        "CW_METRICS_PORT": str(free_port()),
        "CW_PROJECTOR_FETCH_WAIT": "200ms",
    }


@pytest.fixture
def projector(env: dict[str, str], tmp_path: Path) -> Iterator[ProjectorProcess]:
    """``cw run projector`` with ``env`` (a test module may define its own), stopped at the end."""
    p = ProjectorProcess(env, tmp_path / "projector.log")
    yield p
    p.ensure_gone()
