from __future__ import annotations

import pytest

from services.notifier.adapters.memory import MemoryLedger
from tests.ledger_suite import LedgerSuite

pytestmark = pytest.mark.unit


class TestMemoryLedger(LedgerSuite):
    @pytest.fixture(autouse=True)
    def _ledger(self) -> None:
        self.ledger = MemoryLedger()
