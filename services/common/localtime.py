"""Times for people: instants shown in the campaign's time zone, and the times people type.

Programs exchange instants (aware datetimes, RFC 3339 with an offset); a person at the bureau
reads and writes wall-clock times in the campaign's zone (``Campaign.timezone``, Asia/Shanghai for
the shipped campaign). What is printed for a person goes through ``shown``; what a person types
for a moment goes through ``parse_moment`` then ``MomentInput.resolve``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

BEIJING_TIME = "北京时间"
_CHINA_ZONES = frozenset(
    {"Asia/Shanghai", "Asia/Chongqing", "Asia/Chungking", "Asia/Harbin", "PRC"}
)
"""The IANA names of China Standard Time (UTC+8 all year since 1991)."""


def zone_label(zone: ZoneInfo) -> str:
    """How a header names the zone once: ``北京时间``, else the IANA name (``Europe/Berlin``)."""
    return BEIJING_TIME if zone.key in _CHINA_ZONES else zone.key


def offset_text(moment: datetime) -> str:
    """``+08:00``: the UTC offset of an aware datetime, as RFC 3339 writes it."""
    offset = moment.utcoffset()
    if offset is None:
        raise ValueError("a naive datetime has no offset")
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(offset) // timedelta(minutes=1)
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def local(moment: datetime, zone: ZoneInfo) -> datetime:
    """The same instant on the zone's wall clock."""
    if moment.tzinfo is None:
        raise ValueError("a naive datetime is not an instant")
    return moment.astimezone(zone)


def shown(
    moment: datetime | None,
    zone: ZoneInfo,
    *,
    seconds: bool | None = False,
    offset: bool = False,
    missing: str = "-",
) -> str:
    """``2023-02-13 08:45`` for a person, in ``zone``.

    ``seconds``: ``True`` always, ``False`` never (the table's minutes), ``None`` only when the
    moment has any (an ``--as-of`` as typed). ``offset`` adds `` +08:00`` where the zone is not
    stated elsewhere (a line read alone). ``None`` shows as ``missing``.
    """
    if moment is None:
        return missing
    wall = local(moment, zone)
    with_seconds = seconds if seconds is not None else bool(wall.second or wall.microsecond)
    text = wall.strftime("%Y-%m-%d %H:%M:%S" if with_seconds else "%Y-%m-%d %H:%M")
    return f"{text} {offset_text(wall)}" if offset else text


def rfc3339(moment: datetime | None, zone: ZoneInfo) -> str | None:
    """The instant for programs: RFC 3339 in the zone's offset (``2023-02-13T08:45:00+08:00``)."""
    return None if moment is None else local(moment, zone).isoformat()


def end_of_day(day: date, zone: ZoneInfo) -> datetime:
    """The last instant (to the microsecond, the finest PostgreSQL and Python keep) of ``day``
    on the zone's wall clock: everything that happened that local day is at or before it."""
    # Subtract in UTC: arithmetic on an aware datetime of a ZoneInfo is wall-clock arithmetic,
    # which is wrong across a DST change.
    next_midnight = datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone)
    return (next_midnight.astimezone(UTC) - timedelta(microseconds=1)).astimezone(zone)


_MOMENT = re.compile(
    r"(?P<day>\d{4}-\d{2}-\d{2})"
    r"(?:[Tt ](?P<clock>\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)"
    r"(?P<offset>[Zz]|[+-]\d{2}:\d{2})?)?"
)
MOMENT_FORMS = (
    "a date (2023-03-15: the end of that day), a local time (2023-03-15 14:00 or "
    "2023-03-15T14:00) or RFC 3339 with an offset (2023-03-15T14:00+08:00)"
)


class MomentError(ValueError):
    """A moment a person typed that is not one; the message says what is accepted."""


@dataclass(frozen=True, slots=True)
class MomentInput:
    """A moment as typed, before the campaign's zone is known: exactly one of ``day`` (the end
    of that local day), ``wall`` (a local time) and ``instant`` (it had an offset)."""

    text: str
    day: date | None = None
    wall: datetime | None = None
    instant: datetime | None = None

    def resolve(self, zone: ZoneInfo) -> datetime:
        """The instant meant, reading a date or a local time on the zone's wall clock."""
        if self.instant is not None:
            return self.instant
        if self.day is not None:
            return end_of_day(self.day, zone)
        assert self.wall is not None
        moment = self.wall.replace(tzinfo=zone)
        # A wall time skipped by a DST change does not survive the round trip through UTC.
        if moment.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != self.wall:
            raise MomentError(
                f"{self.text!r} does not exist in {zone.key} (the clocks skipped it); "
                "give an offset"
            )
        return moment


def parse_moment(text: str) -> MomentInput:
    """Read a moment a person typed: a date, a local time without offset, or RFC 3339.

    Raises ``MomentError`` naming the accepted forms.
    """
    cleaned = text.strip()
    m = _MOMENT.fullmatch(cleaned)
    if m is None:
        raise MomentError(f"{text!r} is not a moment: give {MOMENT_FORMS}")
    try:
        if m["clock"] is None:
            return MomentInput(text, day=date.fromisoformat(m["day"]))
        moment = datetime.fromisoformat(f"{m['day']}T{m['clock']}{m['offset'] or ''}".upper())
    except ValueError as exc:
        raise MomentError(f"{text!r} is not a real date or time ({exc})") from None
    if moment.tzinfo is None:
        return MomentInput(text, wall=moment)
    return MomentInput(text, instant=moment)
