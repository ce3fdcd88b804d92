from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from services.common.settings import Settings
from services.projector.adapters.read_model import PostgresReadModel
from services.projector.bootstrap import ensure_read_model
from tests.read_model_suite import ReadModelSuite

pytestmark = pytest.mark.integration


class TestPostgresReadModel(ReadModelSuite):
    @pytest.fixture(autouse=True)
    async def _store(self, database_url: str) -> AsyncIterator[None]:
        await ensure_read_model(Settings(database_url=database_url))
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
        assert pool is not None
        self.store = PostgresReadModel(pool)
        self._pool = pool
        yield
        await pool.close()

    def other_consumer(self, name: str) -> PostgresReadModel:
        return PostgresReadModel(self._pool, consumer=name)
