from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from services.common.settings import Settings
from services.projector.adapters.read_model import PostgresReadModel
from services.projector.bootstrap import ensure_read_model
from services.projector.domain.model import VenuePhaseCounts
from tests import factories as f
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

    async def counts(self, venue_id: str, phase: str) -> VenuePhaseCounts:
        # Through the public view: what operators read is what the suite checks.
        row = await self._pool.fetchrow(
            "SELECT * FROM venue_phase_summary WHERE district = $1 AND venue_id = $2 "
            "AND phase = $3",
            f.DISTRICT, venue_id, phase,
        )  # fmt: skip
        assert row is not None
        return VenuePhaseCounts(**{k: row[k] for k in VenuePhaseCounts.__dataclass_fields__})
