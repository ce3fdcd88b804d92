from __future__ import annotations

import pytest

from services.projector.adapters.memory import MemoryReadModel
from services.projector.domain.model import VenuePhaseCounts
from tests import factories as f
from tests.read_model_suite import ReadModelSuite

pytestmark = pytest.mark.unit


class TestMemoryReadModel(ReadModelSuite):
    @pytest.fixture(autouse=True)
    def _store(self) -> None:
        self.store = MemoryReadModel()

    def other_consumer(self, name: str) -> MemoryReadModel:
        assert isinstance(self.store, MemoryReadModel)
        return MemoryReadModel(name, shared=self.store)

    async def counts(self, venue_id: str, phase: str) -> VenuePhaseCounts:
        assert isinstance(self.store, MemoryReadModel)
        return self.store.state.counts[(f.DISTRICT, venue_id, phase)]
