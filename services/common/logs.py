"""The services' log lines: each stamped on the campaign's clock with its offset
(``2026-12-08 09:56:38.123 +08:00 INFO cw.projector: …``), so that an operator at the bureau
reads a log line's time as the time on the wall, and a line read alone still says which zone."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from services.common.campaign import CampaignError, load_campaign
from services.common.localtime import offset_text

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class LocalTimeFormatter(logging.Formatter):
    """``%(asctime)s`` in ``zone``, to the millisecond, with the UTC offset."""

    def __init__(self, zone: ZoneInfo, fmt: str = FORMAT) -> None:
        super().__init__(fmt)
        self.zone = zone

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        moment = datetime.fromtimestamp(record.created, self.zone)
        return f"{moment:%Y-%m-%d %H:%M:%S}.{int(record.msecs):03d} {offset_text(moment)}"


UTC_ZONE = ZoneInfo("UTC")


def log_zone(campaign_file: str | Path | None) -> ZoneInfo:
    """The campaign's time zone; UTC when the file cannot be read, so that logging never stops
    a service before it can say what is wrong with its campaign file itself (as it did before
    lines were stamped locally). Every line carries its offset, so either reads unambiguously."""
    try:
        return load_campaign(campaign_file).timezone
    except (CampaignError, OSError):
        return UTC_ZONE


def configure_logging(campaign_file: str | Path | None, level: int = logging.INFO) -> None:
    """Log to stderr at ``level``, stamped on the campaign's clock (``log_zone``)."""
    handler = logging.StreamHandler()
    handler.setFormatter(LocalTimeFormatter(log_zone(campaign_file)))
    logging.basicConfig(level=level, handlers=[handler])
