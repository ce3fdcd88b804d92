"""The services' log lines: each stamped on the campaign's clock with its offset
(``2026-12-08 09:56:38.123 +08:00 INFO cw.projector: …``), so that an operator at the bureau
reads a log line's time as the time on the wall, and a line read alone still says which zone."""

from __future__ import annotations

import logging
from datetime import datetime
from zoneinfo import ZoneInfo

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


def configure_logging(zone: ZoneInfo, level: int = logging.INFO) -> None:
    """Log to stderr at ``level``, stamped in ``zone`` (the campaign's time zone)."""
    handler = logging.StreamHandler()
    handler.setFormatter(LocalTimeFormatter(zone))
    logging.basicConfig(level=level, handlers=[handler])
