"""The campaign calendar: which phase an event belongs to. Configuration, not code."""

from __future__ import annotations

import itertools
import math
import tomllib
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cached_property
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

from contracts import PHASES
from services.common.durations import parse_duration

OUTSIDE = "outside"
"""The phase of an event that falls in no phase of the campaign."""

DEFAULT_CAMPAIGN = "lianyun-2023.toml"


@dataclass(frozen=True, slots=True)
class PhaseSpan:
    name: str
    title: str
    start: date
    end: date | None  # exclusive; None runs on


@dataclass(frozen=True)
class Campaign:
    name: str
    timezone: ZoneInfo
    phases: tuple[PhaseSpan, ...]
    rebound_window: timedelta = timedelta(days=90)
    district: str | None = None

    def phase_of(self, moment: datetime) -> str:
        """The phase whose local dates contain ``moment`` (an aware datetime), else ``outside``."""
        # Compared as POSIX seconds: comparing aware datetimes of two time zones asks both for
        # their offsets on every comparison, a measurable share of the projector's time.
        t = moment.timestamp()
        for name, start, end in self._instants:
            if start <= t < end:
                return name
        return OUTSIDE

    @cached_property
    def _instants(self) -> tuple[tuple[str, float, float], ...]:
        def midnight(day: date) -> float:
            return datetime.combine(day, time.min, tzinfo=self.timezone).timestamp()

        return tuple(
            (s.name, midnight(s.start), math.inf if s.end is None else midnight(s.end))
            for s in self.phases
        )


class CampaignError(ValueError):
    pass


def load_campaign(path: str | Path | None = None) -> Campaign:
    """Read a campaign TOML file; ``None`` reads the shipped Lianyun 2023 campaign."""
    if path is None:
        text = resources.files("services.common.campaigns").joinpath(DEFAULT_CAMPAIGN).read_text()
        where = DEFAULT_CAMPAIGN
    else:
        text = Path(path).read_text(encoding="utf-8")
        where = str(path)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CampaignError(f"{where}: {exc}") from None
    return parse_campaign(raw, where)


def parse_campaign(raw: dict[str, object], where: str = "campaign") -> Campaign:
    phases_raw = raw.get("phases")
    if not isinstance(phases_raw, list) or not phases_raw:
        raise CampaignError(f"{where}: [[phases]] must list at least one phase")
    spans: list[PhaseSpan] = []
    for i, p in enumerate(phases_raw):
        if not isinstance(p, dict):
            raise CampaignError(f"{where}: phases[{i}] must be a table")
        name = p.get("name")
        if name not in PHASES:
            raise CampaignError(
                f"{where}: phases[{i}].name {name!r} is not one of {', '.join(PHASES)}"
            )
        start, end = _day(p.get("start"), f"{where}: phases[{i}].start"), p.get("end")
        end_day = None if end is None else _day(end, f"{where}: phases[{i}].end")
        if end_day is not None and end_day <= start:
            raise CampaignError(f"{where}: phases[{i}] ends before it starts")
        spans.append(PhaseSpan(str(name), str(p.get("title", name)), start, end_day))
    spans.sort(key=lambda s: s.start)
    for a, b in itertools.pairwise(spans):
        if a.end is None or a.end > b.start:
            raise CampaignError(f"{where}: phases {a.name} and {b.name} overlap")
    rules = raw.get("rules", {})
    if not isinstance(rules, dict):
        raise CampaignError(f"{where}: [rules] must be a table")
    try:
        window = parse_duration(rules.get("rebound_window", "90d"))
        tz = ZoneInfo(str(raw.get("timezone", "Asia/Shanghai")))
    except (ValueError, KeyError) as exc:
        raise CampaignError(f"{where}: {exc}") from None
    district = raw.get("district")
    return Campaign(
        name=str(raw.get("name", where)),
        timezone=tz,
        phases=tuple(spans),
        rebound_window=window,
        district=None if district is None else str(district),
    )


def _day(value: object, what: str) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise CampaignError(f"{what} must be a date like 2023-02-01, got {value!r}")
