"""The campaign file: its calendar (which phase an event belongs to), the districts it covers
and the checklist it inspects against (创卫点位标准), with the bureau's names for their codes,
and the reminders' rules. Configuration, not code."""

from __future__ import annotations

import itertools
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import get_args
from zoneinfo import ZoneInfo

from contracts import PHASES
from contracts.events import (
    DISTRICT_CODE,
    ITEM_CODE,
    PATTERN_REASONS,
    PHONE,
    Severity,
    VenueKind,
)
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


@dataclass(frozen=True, slots=True)
class Contact:
    """A person of the bureau reminders go to (分管领导, 主要负责人)."""

    name: str
    phone: str | None = None


@dataclass(frozen=True, slots=True)
class ReminderRules:
    """The ``[reminders]`` table: when reminders fire, and the bureau's own contacts."""

    order_within: timedelta = timedelta(days=3)
    """``no_order`` fires this long after ``IssueFound`` when no order (交办单) came."""
    due_soon: tuple[timedelta, ...] = (timedelta(hours=72), timedelta(hours=24))
    """``due_soon`` level n fires ``due_soon[n-1]`` before the deadline."""
    escalate_every: timedelta = timedelta(hours=72)
    escalate_max: int = 3
    look_back_after: timedelta = timedelta(days=30)
    stale_after: timedelta = timedelta(hours=24)
    """A reminder whose fire time is older than this is recorded as skipped, never sent."""
    digest_at: time = time(8, 30)
    """Local time (the campaign's time zone) of each district's daily digest."""
    deputy_head: Contact | None = None
    head: Contact | None = None


@dataclass(frozen=True, slots=True)
class District:
    """A district the campaign covers: its administrative code and its name (连云区)."""

    code: str
    name: str


@dataclass(frozen=True, slots=True)
class ChecklistItem:
    """An item of the point standards (创卫点位标准) an issue names by its code."""

    code: str
    title: str
    """In the bureau's words: what every text a person reads shows instead of the code."""
    category: str
    venue_kinds: tuple[str, ...]
    """The venue kinds it applies to (``farmers_market``, ``mall_supermarket``, ``other``)."""
    severity: str
    """The severity an inspection app proposes for a failure; an event's own one counts."""


@dataclass(frozen=True)
class Names:
    """The bureau's names for the codes events carry: districts and checklist items. A code the
    campaign does not list is shown as itself."""

    districts: tuple[District, ...] = ()
    checklist: tuple[ChecklistItem, ...] = ()

    @cached_property
    def _districts(self) -> dict[str, str]:
        return {d.code: d.name for d in self.districts}

    @cached_property
    def _codes(self) -> dict[str, str]:
        return {d.name: d.code for d in self.districts}

    @cached_property
    def _items(self) -> dict[str, ChecklistItem]:
        return {i.code: i for i in self.checklist}

    def knows_district(self, code: str) -> bool:
        return code in self._districts

    def district(self, code: str) -> str:
        """The district's name (``连云区``), else its code."""
        return self._districts.get(code, code)

    def district_code(self, code_or_name: str) -> str:
        """The code of a district given by its code or its name; what is neither, unchanged."""
        return self._codes.get(code_or_name, code_or_name)

    def knows_item(self, code: str) -> bool:
        return code in self._items

    def item(self, code: str) -> str:
        """The checklist item's title (``公平秤``), else its code."""
        found = self._items.get(code)
        return found.title if found is not None else code


@dataclass(frozen=True)
class Campaign:
    name: str
    timezone: ZoneInfo
    phases: tuple[PhaseSpan, ...]
    rebound_window: timedelta = timedelta(days=90)
    waiting_alert_after: timedelta = timedelta(days=3)
    """A follow-up (RectificationDue, RecheckPassed …) waiting this long for its IssueFound is
    alerted on (``[rules] waiting_alert_after``)."""
    reminders: ReminderRules = field(default_factory=ReminderRules)
    names: Names = field(default_factory=Names)
    """Its districts and checklist, and their names."""

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


KNOWN_KEYS: Mapping[str, frozenset[str]] = {
    "": frozenset({"name", "timezone", "districts", "phases", "rules", "reminders", "checklist"}),
    "districts": frozenset({"code", "name"}),
    "checklist": frozenset({"code", "title", "category", "venue_kinds", "severity"}),
    "phases": frozenset({"name", "title", "start", "end"}),
    "rules": frozenset({"rebound_window", "waiting_alert_after"}),
    "reminders": frozenset(
        {
            "order_within",
            "due_soon",
            "escalate_every",
            "escalate_max",
            "look_back_after",
            "stale_after",
            "digest_at",
            "contacts",
        }
    ),
    "reminders.contacts": frozenset({"deputy_head", "head"}),
    "reminders.contacts.person": frozenset({"name", "phone"}),
}
"""Every key a campaign file may have, per table: any other is a mistake said by name (a typo
such as ``stale_afer`` would otherwise silently keep the default)."""


def _unknown(table: object, known: str, where: str, path: str) -> None:
    if not isinstance(table, dict):
        return
    extra = sorted(set(table) - KNOWN_KEYS[known])
    if extra:
        names = ", ".join(f"{path}{k}" for k in extra)
        allowed = ", ".join(sorted(KNOWN_KEYS[known]))
        raise CampaignError(f"{where}: unknown key {names} (known here: {allowed})")


def parse_campaign(raw: dict[str, object], where: str = "campaign") -> Campaign:
    if "district" in raw:
        raise CampaignError(
            f"{where}: unknown key district: a campaign lists its districts, one a line, as "
            'districts = [{ code = "320703", name = "连云区" }, ...]'
        )
    _unknown(raw, "", where, "")
    phases_raw = raw.get("phases")
    if not isinstance(phases_raw, list) or not phases_raw:
        raise CampaignError(f"{where}: [[phases]] must list at least one phase")
    spans: list[PhaseSpan] = []
    for i, p in enumerate(phases_raw):
        if not isinstance(p, dict):
            raise CampaignError(f"{where}: phases[{i}] must be a table")
        _unknown(p, "phases", where, f"phases[{i}].")
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
    _unknown(rules, "rules", where, "rules.")
    try:
        window = parse_duration(rules.get("rebound_window", "90d"))
        tz = ZoneInfo(str(raw.get("timezone", "Asia/Shanghai")))
    except (ValueError, KeyError) as exc:
        raise CampaignError(f"{where}: {exc}") from None
    try:
        waiting_alert_after = parse_duration(rules.get("waiting_alert_after", "3d"))
    except ValueError as exc:
        raise CampaignError(f"{where}: rules.waiting_alert_after: {exc}") from None
    if waiting_alert_after <= timedelta(0):
        raise CampaignError(f"{where}: rules.waiting_alert_after must be longer than 0")
    return Campaign(
        name=str(raw.get("name", where)),
        timezone=tz,
        phases=tuple(spans),
        rebound_window=window,
        waiting_alert_after=waiting_alert_after,
        reminders=_reminders(raw.get("reminders", {}), where),
        names=Names(
            _districts(raw.get("districts"), where), _checklist(raw.get("checklist"), where)
        ),
    )


TITLE_MAX = 64
"""A district's name, a checklist item's title or category is at most this long."""
VENUE_KINDS: tuple[str, ...] = get_args(VenueKind)
SEVERITIES: tuple[str, ...] = get_args(Severity)


def _tables(value: object, key: str, where: str) -> list[dict[str, object]]:
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        raise CampaignError(f"{where}: {key} must be a list of tables")
    for i, table in enumerate(value):
        _unknown(table, key, where, f"{key}[{i}].")
    return value


def _text(table: dict[str, object], key: str, path: str, where: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value.strip():
        raise CampaignError(f"{where}: {path}.{key} must be a text, got {value!r}")
    if len(value.strip()) > TITLE_MAX:
        raise CampaignError(f"{where}: {path}.{key} is longer than {TITLE_MAX} characters")
    return value.strip()


def _code(table: dict[str, object], pattern: str, path: str, where: str) -> str:
    value = table.get("code")
    if not isinstance(value, str) or not re.fullmatch(pattern, value):
        raise CampaignError(f"{where}: {path}.code {PATTERN_REASONS[pattern]}, got {value!r}")
    return value


def _districts(value: object, where: str) -> tuple[District, ...]:
    """``districts``: every district the campaign covers; an event of another one is a dead
    letter (``unknown_district``), so at least one is listed."""
    if value is None:
        raise CampaignError(
            f"{where}: districts must list the districts the campaign covers, one a line: "
            'districts = [{ code = "320703", name = "连云区" }]'
        )
    found: list[District] = []
    for i, table in enumerate(_tables(value, "districts", where)):
        path = f"districts[{i}]"
        district = District(_code(table, DISTRICT_CODE, path, where),
                            _text(table, "name", path, where))  # fmt: skip
        for other in found:
            if district.code == other.code or district.name == other.name:
                raise CampaignError(
                    f"{where}: {path} repeats {other.code} {other.name}: a district is listed once"
                )
        found.append(district)
    if not found:
        raise CampaignError(f"{where}: districts must list at least one district")
    return tuple(found)


def _checklist(value: object, where: str) -> tuple[ChecklistItem, ...]:
    """``[[checklist]]``: the point standards' items. An issue may name a code not listed here:
    it is projected all the same, and ``cw report unknown-items`` lists it."""
    if value is None:
        return ()
    found: dict[str, ChecklistItem] = {}
    for i, table in enumerate(_tables(value, "checklist", where)):
        path = f"checklist[{i}]"
        code = _code(table, ITEM_CODE, path, where)
        if code in found:
            raise CampaignError(f"{where}: {path}.code {code} is listed twice")
        kinds = table.get("venue_kinds")
        if (
            not isinstance(kinds, list)
            or not kinds
            or not all(k in VENUE_KINDS for k in kinds)
            or len(set(kinds)) != len(kinds)
        ):
            raise CampaignError(
                f"{where}: {path}.venue_kinds must list venue kinds from "
                f"{', '.join(VENUE_KINDS)}, each once, got {kinds!r}"
            )
        severity = table.get("severity")
        if severity not in SEVERITIES:
            raise CampaignError(
                f"{where}: {path}.severity must be one of {', '.join(SEVERITIES)}, got {severity!r}"
            )
        found[code] = ChecklistItem(
            code=code,
            title=_text(table, "title", path, where),
            category=_text(table, "category", path, where),
            venue_kinds=tuple(str(k) for k in kinds),
            severity=str(severity),
        )
    return tuple(found.values())


def _reminders(table: object, where: str) -> ReminderRules:
    if not isinstance(table, dict):
        raise CampaignError(f"{where}: [reminders] must be a table")
    _unknown(table, "reminders", where, "reminders.")
    d = ReminderRules()

    def duration(key: str, default: timedelta) -> timedelta:
        value = table.get(key)
        if value is None:
            return default
        try:
            parsed = parse_duration(value)
        except ValueError as exc:
            raise CampaignError(f"{where}: reminders.{key}: {exc}") from None
        if parsed <= timedelta(0):
            raise CampaignError(f"{where}: reminders.{key} must be longer than 0, got {value!r}")
        return parsed

    soon_raw = table.get("due_soon")
    if soon_raw is None:
        due_soon = d.due_soon
    elif isinstance(soon_raw, list):
        due_soon = tuple(_due_soon_item(v, i, where) for i, v in enumerate(soon_raw))
        if len(set(due_soon)) != len(due_soon):
            raise CampaignError(f"{where}: reminders.due_soon lists the same offset twice")
    else:
        raise CampaignError(f'{where}: reminders.due_soon must be a list such as ["72h", "24h"]')
    escalate_max = table.get("escalate_max", d.escalate_max)
    if type(escalate_max) is not int or not 0 <= escalate_max <= 100:
        raise CampaignError(
            f"{where}: reminders.escalate_max must be a whole number from 0 to 100, "
            f"got {escalate_max!r}"
        )
    contacts = table.get("contacts", {})
    if not isinstance(contacts, dict):
        raise CampaignError(f"{where}: [reminders.contacts] must be a table")
    _unknown(contacts, "reminders.contacts", where, "reminders.contacts.")
    return ReminderRules(
        order_within=duration("order_within", d.order_within),
        due_soon=due_soon,
        escalate_every=duration("escalate_every", d.escalate_every),
        escalate_max=escalate_max,
        look_back_after=duration("look_back_after", d.look_back_after),
        stale_after=duration("stale_after", d.stale_after),
        digest_at=_clock_time(table.get("digest_at"), d.digest_at, where),
        deputy_head=_contact(contacts.get("deputy_head"), "deputy_head", where),
        head=_contact(contacts.get("head"), "head", where),
    )


def _due_soon_item(value: object, i: int, where: str) -> timedelta:
    try:
        parsed = parse_duration(value)  # type: ignore[arg-type]
    except ValueError as exc:
        raise CampaignError(f"{where}: reminders.due_soon[{i}]: {exc}") from None
    if parsed <= timedelta(0):
        raise CampaignError(f"{where}: reminders.due_soon[{i}] must be longer than 0")
    return parsed


def _clock_time(value: object, default: time, where: str) -> time:
    if value is None:
        return default
    if isinstance(value, time):
        return value
    text = str(value)
    try:
        parsed = time.fromisoformat(text)
        if len(text) not in (5, 8):
            raise ValueError(text)
    except ValueError:
        raise CampaignError(
            f"{where}: reminders.digest_at must be a local time HH:MM or HH:MM:SS, got {value!r}"
        ) from None
    return parsed


NAME_MAX = 64
"""A reminder's recipient name (the contract's ``Recipient.name``) is at most this long."""


def _contact(value: object, key: str, where: str) -> Contact | None:
    if value is None:
        return None
    path = f"reminders.contacts.{key}"
    if not isinstance(value, dict):
        raise CampaignError(
            f'{where}: {path} must be a table such as {{ name = "…", phone = "…" }}'
        )
    _unknown(value, "reminders.contacts.person", where, f"{path}.")
    name, phone = value.get("name"), value.get("phone")
    if not isinstance(name, str) or not name.strip():
        raise CampaignError(f"{where}: {path}.name must be a name")
    if phone is not None and not isinstance(phone, str):
        raise CampaignError(f'{where}: {path}.phone must be a string such as "13800000000"')
    if len(name.strip()) > NAME_MAX:
        raise CampaignError(f"{where}: {path}.name is longer than {NAME_MAX} characters")
    if phone is not None and not re.fullmatch(PHONE, phone):
        raise CampaignError(f"{where}: {path}.phone {PATTERN_REASONS[PHONE]}, got {phone!r}")
    return Contact(name.strip(), phone)


def _day(value: object, what: str) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise CampaignError(f"{what} must be a date like 2023-02-01, got {value!r}")
