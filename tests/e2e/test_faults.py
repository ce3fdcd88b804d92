"""The fault suite at small sizes (``make faults`` runs it at full size and writes the figures):
every case loses nothing, doubles nothing (the notifier: at most the request in flight at each
kill) and ends with a clean ``cw audit``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.faults import CASES, SMALL, Lab

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("case", list(CASES))
async def test_a_fault_loses_nothing_and_doubles_nothing(
    case: str, postgres_admin_url: str, tmp_path: Path
) -> None:
    figures = await CASES[case](Lab(postgres_admin_url, tmp_path), SMALL)
    print(figures)
    assert figures.lost == 0, figures
    assert figures.doubled <= figures.doubled_allowed, figures
    assert figures.audit_clean, figures
    assert figures.recovery_s is not None, f"never caught up: {figures}"
