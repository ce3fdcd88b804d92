"""``cw report``'s wiring: which URL (the read-only role's), the connection, the source."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from services.common.campaign import Campaign
from services.common.settings import Settings
from services.reports.adapters.views import (
    ViewsSource,
    refused_behind_the_views,
    registered_venues,
)
from services.reports.domain.model import Facts, Report, VenueFact
from services.reports.service import make_reports

CONNECT_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class ReaderUrl:
    url: str
    setting: str
    """``CW_READER_DATABASE_URL``, or ``CW_DATABASE_URL`` when that one is unset."""


def reader_url(settings: Settings) -> ReaderUrl:
    """The read-only role's URL; the service's own URL when none is configured (a development
    database where the reader role was not made)."""
    if settings.reader_database_url:
        return ReaderUrl(settings.reader_database_url, "CW_READER_DATABASE_URL")
    return ReaderUrl(settings.database_url, "CW_DATABASE_URL")


async def reports(
    settings: Settings,
    campaign: Campaign,
    names: Sequence[str],
    district: str | None,
    as_of: datetime | None,
) -> tuple[Facts, list[Report]]:
    conn = await asyncpg.connect(reader_url(settings).url, timeout=CONNECT_TIMEOUT_S)
    try:
        return await make_reports(ViewsSource(conn, campaign), names, district, as_of)
    finally:
        await conn.close()


async def venues(settings: Settings, district: str | None) -> list[VenueFact]:
    """``cw venues``: the registered venues, read as the read-only role."""
    conn = await asyncpg.connect(reader_url(settings).url, timeout=CONNECT_TIMEOUT_S)
    try:
        return await registered_venues(conn, district)
    finally:
        await conn.close()


async def why_refused(settings: Settings) -> str | None:
    """After the views were refused: the cause when it lies behind them (their owner may not
    read a generation), else ``None``."""
    conn = await asyncpg.connect(reader_url(settings).url, timeout=CONNECT_TIMEOUT_S)
    try:
        return await refused_behind_the_views(conn)
    finally:
        await conn.close()
