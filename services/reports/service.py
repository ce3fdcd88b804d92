"""``cw report``'s use case: the facts (now, or as of a moment), then the reports asked for."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from services.reports.domain.model import Facts, Report
from services.reports.domain.ports import FactsSource
from services.reports.domain.reports import build


async def make_reports(
    source: FactsSource, names: Sequence[str], district: str | None, as_of: datetime | None
) -> tuple[Facts, list[Report]]:
    facts = await (source.now(district) if as_of is None else source.as_of(district, as_of))
    return facts, build(facts, names)
