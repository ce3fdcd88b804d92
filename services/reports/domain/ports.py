"""What the reports need from outside: the facts, now or as they stood at a moment."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from services.reports.domain.model import Facts


class FactsSource(Protocol):
    async def now(self, district: str | None) -> Facts:
        """The facts as the public views show them now (the database's clock)."""
        ...

    async def as_of(self, district: str | None, moment: datetime) -> Facts:
        """The facts as they stood at ``moment``: the archive replayed up to it."""
        ...
