from __future__ import annotations

import pytest

from services.projector.adapters.memory import MemoryReadModel
from tests.read_model_suite import ReadModelSuite

pytestmark = pytest.mark.unit


class TestMemoryReadModel(ReadModelSuite):
    @pytest.fixture(autouse=True)
    def _store(self) -> None:
        self.store = MemoryReadModel()

    def other_consumer(self, name: str) -> MemoryReadModel:
        assert isinstance(self.store, MemoryReadModel)
        return MemoryReadModel(name, shared=self.store)
