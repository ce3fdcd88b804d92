"""The bureau's reports, computed from the facts (``Facts``): one code path whether the facts
were read from the views now or replayed from the archive as of a past moment, so the two never
disagree. Pure: no driver is imported here."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import timedelta

from contracts import PHASES
from services.common.overdue import days_overdue
from services.reports.domain.model import (
    Column,
    Facts,
    IssueFact,
    Report,
    Value,
    VenueFact,
    VenuePhaseFact,
    WaitingFact,
)

REPORTS = ("summary", "overdue", "rebounds", "streets", "on_time", "waiting", "unknown_items")
"""Every report, in the order ``cw report`` prints them."""
NOW_ONLY = frozenset({"waiting"})
"""Reports of what is so now, which a replay as of a past moment cannot give: the archive keeps
the events applied, not when each one waited."""

_PHASE_ORDER = {p: i for i, p in enumerate(PHASES)}


def _phase_key(phase: str) -> int:
    return _PHASE_ORDER.get(phase, len(_PHASE_ORDER))


def rate(part: int, whole: int) -> float | None:
    """``part / whole``; ``None`` when there is no whole (nothing checked, nothing closed)."""
    return part / whole if whole else None


def _venues(facts: Facts) -> dict[tuple[str, str], VenueFact]:
    return {(v.district, v.venue_id): v for v in facts.venues}


DISTRICT = Column("district", "区", "district", "district")
ITEM = Column("item_code", "检查项", "item", "item")
PHASE = Column("phase", "阶段", "phase", "phase")
VENUE_KIND = Column("venue_kind", "场所类型", "venue kind", "venue_kind")
VENUE_ID = Column("venue_id", "场所编号", "venue id")
VENUE = Column("venue", "场所", "venue")
VENUES = Column("venues", "场所数", "venues", "int")
INSPECTED = Column("venues_inspected", "已检查场所", "venues inspected", "int")
COVERAGE = Column("coverage", "覆盖率", "coverage", "rate")
INSPECTIONS = Column("inspections", "检查次数", "inspections", "int")
BY_KIND = (
    Column("self_check", "自查", "self checks", "int"),
    Column("supervision", "督查", "supervisions", "int"),
    Column("look_back", "回头看", "look-backs", "int"),
    Column("re_review", "复审", "re-reviews", "int"),
)
ITEMS_CHECKED = Column("items_checked", "检查项数", "items checked", "int")
PASS_RATE = Column("pass_rate", "合格率", "pass rate", "rate")
FOUND = Column("issues_found", "发现问题", "issues found", "int")
OPEN = Column("issues_open", "未销号", "open", "int")
OVERDUE = Column("issues_overdue", "已逾期", "overdue", "int")
CLOSED = Column("issues_closed", "已销号", "closed", "int")
ON_TIME = Column("closed_on_time", "按期销号", "closed on time", "int")
REBOUNDS = Column("rebounds", "反弹", "rebounds", "int")
PEOPLE = (
    Column("first_responsible_name", "第一责任人", "first responsible"),
    Column("first_responsible_phone", "第一责任人电话", "first responsible phone"),
    Column("officer_name", "责任干部", "officer"),
    Column("officer_phone", "责任干部电话", "officer phone"),
)
"""Whom to call about a venue: a name and a phone each in a column of its own, so that a
spreadsheet sorts and filters by either."""


def _people(v: VenueFact | None) -> dict[str, Value]:
    if v is None:
        return {c.key: None for c in PEOPLE}
    return {
        "first_responsible_name": v.first_responsible_name,
        "first_responsible_phone": v.first_responsible_phone,
        "officer_name": v.officer_name,
        "officer_phone": v.officer_phone if v.officer_name else None,
    }


class _Sums:
    """The counters of several (venue, phase) rows added up."""

    def __init__(self) -> None:
        self.venues = self.inspected = self.inspections = 0
        self.kinds = [0, 0, 0, 0]
        self.checked = self.failed = 0
        self.found = self.open = self.overdue = self.closed = self.on_time = self.rebounds = 0

    def add(self, r: VenuePhaseFact) -> None:
        self.venues += 1
        self.inspected += int(r.inspections > 0)
        self.inspections += r.inspections
        for i, n in enumerate(
            (r.inspections_self_check, r.inspections_supervision, r.inspections_look_back,
             r.inspections_re_review)
        ):  # fmt: skip
            self.kinds[i] += n
        self.checked += r.items_checked
        self.failed += r.items_failed
        self.found += r.issues_found
        self.open += r.issues_open
        self.overdue += r.issues_overdue
        self.closed += r.issues_closed
        self.on_time += r.closed_on_time
        self.rebounds += r.rebounds

    def values(self, detailed: bool) -> dict[str, Value]:
        out: dict[str, Value] = {
            "venues": self.venues,
            "venues_inspected": self.inspected,
            "coverage": rate(self.inspected, self.venues),
            "inspections": self.inspections,
        }
        if detailed:
            out.update({c.key: n for c, n in zip(BY_KIND, self.kinds, strict=True)})
            out["items_checked"] = self.checked
        out["pass_rate"] = rate(self.checked - self.failed, self.checked)
        out.update(
            {"issues_found": self.found, "issues_open": self.open,
             "issues_overdue": self.overdue, "issues_closed": self.closed}
        )  # fmt: skip
        if detailed:
            out["closed_on_time"] = self.on_time
        out["rebounds"] = self.rebounds
        return out


def _grouped(
    rows: Iterable[VenuePhaseFact], key: Callable[[VenuePhaseFact], tuple[str | None, ...]]
) -> dict[tuple[str | None, ...], _Sums]:
    groups: dict[tuple[str | None, ...], _Sums] = {}
    for r in rows:
        groups.setdefault(key(r), _Sums()).add(r)
    return groups


def phase_summary(facts: Facts) -> Report:
    """By district, phase and venue kind: coverage, inspections by kind, pass rate, issues."""
    groups = _grouped(facts.venue_phases, lambda r: (r.district, r.phase, r.venue_kind))
    ordered = sorted(groups, key=lambda k: (k[0] or "", _phase_key(k[1] or ""), k[2] or ""))
    return Report(
        "summary", "分阶段汇总（按区、场所类型）", "Phase summary by district and venue kind",
        (DISTRICT, PHASE, VENUE_KIND, VENUES, INSPECTED, COVERAGE, INSPECTIONS, *BY_KIND,
         ITEMS_CHECKED, PASS_RATE, FOUND, OPEN, OVERDUE, CLOSED, ON_TIME, REBOUNDS),
        tuple(
            {"district": k[0], "phase": k[1], "venue_kind": k[2], **groups[k].values(True)}
            for k in ordered
        ),
    )  # fmt: skip


def street_summary(facts: Facts) -> Report:
    """The street offices' roll-up (街道): a venue under the street of its registration."""
    venues = _venues(facts)

    def street(r: VenuePhaseFact) -> str | None:
        v = venues.get((r.district, r.venue_id))
        return v.street if v is not None else None

    groups = _grouped(facts.venue_phases, lambda r: (r.district, street(r), r.phase))
    ordered = sorted(
        groups, key=lambda k: (k[0] or "", k[1] is None, k[1] or "", _phase_key(k[2] or ""))
    )
    return Report(
        "streets", "街道汇总", "Street roll-up",
        (DISTRICT, Column("street", "街道", "street"), PHASE, VENUES, INSPECTED, COVERAGE,
         INSPECTIONS, PASS_RATE, FOUND, OPEN, OVERDUE, CLOSED, REBOUNDS),
        tuple(
            {"district": k[0], "street": k[1], "phase": k[2], **groups[k].values(False)}
            for k in ordered
        ),
    )  # fmt: skip


def overdue(facts: Facts) -> Report:
    """Overdue issues, the most overdue first, with whom to call."""
    venues = _venues(facts)
    late = [i for i in facts.issues if i.status == "overdue" and i.due_at is not None]
    late.sort(key=lambda i: (i.due_at, i.district, i.venue_id, i.issue_id))
    rows: list[dict[str, Value]] = []
    for i in late:
        assert i.due_at is not None
        v = venues.get((i.district, i.venue_id))
        rows.append({
            "district": i.district, "venue_id": i.venue_id, "venue": v.name if v else None,
            "item_code": i.item_code, "issue_id": i.issue_id, "order_no": i.order_no,
            "due_at": i.due_at, "days_overdue": days_overdue(i.due_at, facts.as_of),
            **_people(v),
        })  # fmt: skip
    return Report(
        "overdue", "逾期问题清单", "Overdue issues",
        (DISTRICT, VENUE_ID, VENUE, ITEM,
         Column("issue_id", "问题编号", "issue"), Column("order_no", "交办单号", "order no."),
         Column("due_at", "整改期限", "deadline", "time"),
         Column("days_overdue", "逾期天数", "days overdue", "int"),
         *PEOPLE),
        tuple(rows),
    )  # fmt: skip


def rebounds(facts: Facts) -> Report:
    """Issues that came back (反复反弹) within the campaign's rebound window."""
    venues = _venues(facts)
    found = sorted(
        (i for i in facts.issues if i.rebound),
        key=lambda i: (i.district, i.venue_id, i.found_at, i.issue_id),
    )
    rows: list[dict[str, Value]] = []
    for i in found:
        v = venues.get((i.district, i.venue_id))
        rows.append({
            "district": i.district, "venue_id": i.venue_id, "venue": v.name if v else None,
            "item_code": i.item_code, "issue_id": i.issue_id, "phase": i.phase,
            "found_at": i.found_at, "status": i.status,
        })  # fmt: skip
    return Report(
        "rebounds", "反复反弹问题", "Rebounds",
        (DISTRICT, VENUE_ID, VENUE, ITEM,
         Column("issue_id", "问题编号", "issue"), PHASE,
         Column("found_at", "发现时间", "found", "time"),
         Column("status", "状态", "status", "status")),
        tuple(rows),
    )  # fmt: skip


def on_time(facts: Facts) -> Report:
    """Closed issues on time against the deadline in force (extended) and the original one."""
    groups: dict[tuple[str, str], list[IssueFact]] = {}
    for i in facts.issues:
        if i.status == "closed":
            groups.setdefault((i.district, i.phase), []).append(i)
    rows: list[dict[str, Value]] = []
    for district, phase in sorted(groups, key=lambda k: (k[0], _phase_key(k[1]))):
        closed = groups[(district, phase)]
        in_force = sum(bool(i.closed_on_time) for i in closed)
        original = sum(bool(i.closed_on_time_original) for i in closed)
        rows.append({
            "district": district, "phase": phase, "issues_closed": len(closed),
            "extended": sum(i.extensions > 0 for i in closed),
            "on_time_original": original,
            "on_time_original_rate": rate(original, len(closed)),
            "on_time_extended": in_force, "on_time_extended_rate": rate(in_force, len(closed)),
        })  # fmt: skip
    return Report(
        "on_time", "按期销号（原期限与延期后期限）",
        "Closed on time (original and extended deadline)",
        (DISTRICT, PHASE, CLOSED, Column("extended", "曾延期", "extended", "int"),
         Column("on_time_original", "按原期限", "by the original deadline", "int"),
         Column("on_time_original_rate", "原期限按期率", "rate (original)", "rate"),
         Column("on_time_extended", "按延期后期限", "by the extended deadline", "int"),
         Column("on_time_extended_rate", "延期后按期率", "rate (extended)", "rate")),
        tuple(rows),
    )  # fmt: skip


def waiting(facts: Facts) -> Report:
    """Follow-ups waiting for their IssueFound, the longest waiting first: a publisher that
    lost an IssueFound, or sent it to another district, shows here before anyone asks."""
    venues = _venues(facts)

    def row(w: WaitingFact) -> dict[str, Value]:
        v = venues.get((w.district, w.venue_id))
        return {
            "waiting_for": max(facts.as_of - w.waiting_since, timedelta(0)),
            "district": w.district, "venue_id": w.venue_id, "venue": v.name if v else None,
            "issue_id": w.issue_id, "event_type": w.event_type, "event_id": w.event_id,
            "occurred_at": w.occurred_at, "waiting_since": w.waiting_since,
        }  # fmt: skip

    ordered = sorted(
        facts.waiting, key=lambda w: (w.waiting_since, w.district, w.issue_id, w.event_id)
    )
    return Report(
        "waiting", "等待问题登记的后续事件", "Follow-ups waiting for their IssueFound",
        (Column("waiting_for", "已等待", "waiting for", "duration"), DISTRICT, VENUE_ID, VENUE,
         Column("issue_id", "问题编号", "issue"),
         Column("event_type", "事件类型", "event type", "event_type"),
         Column("occurred_at", "事件时间", "occurred", "time"),
         Column("waiting_since", "收到时间", "waiting since", "time"),
         Column("event_id", "事件编号", "event id")),
        tuple(row(w) for w in ordered),
    )  # fmt: skip


def venue_list(venues: Iterable[VenueFact]) -> Report:
    """``cw venues``: every registered venue, by district and id, with whom to call."""
    ordered = sorted(venues, key=lambda v: (v.district, v.venue_id))
    return Report(
        "venues", "场所", "Venues",
        (DISTRICT, VENUE_ID, Column("name", "场所名称", "name"),
         Column("kind", "场所类型", "kind", "venue_kind"), Column("street", "街道", "street"),
         *PEOPLE),
        tuple(
            {"district": v.district, "venue_id": v.venue_id, "name": v.name, "kind": v.kind,
             "street": v.street, **_people(v)}
            for v in ordered
        ),
    )  # fmt: skip


def unknown_items(facts: Facts) -> Report:
    """Item codes issues name that the campaign's checklist does not list, by district: projected
    all the same, and shown as codes until the checklist gains them."""
    found: dict[tuple[str, str], list[IssueFact]] = {}
    for i in facts.issues:
        if i.item_code not in facts.checklist:
            found.setdefault((i.district, i.item_code), []).append(i)
    rows: list[dict[str, Value]] = []
    for district, code in sorted(found):
        issues = found[(district, code)]
        rows.append({
            "district": district, "item_code": code, "issues": len(issues),
            "issues_open": sum(i.status != "closed" for i in issues),
            "venues": len({i.venue_id for i in issues}),
            "first_found": min(i.found_at for i in issues),
            "last_found": max(i.found_at for i in issues),
        })  # fmt: skip
    return Report(
        "unknown_items", "点位标准未列的检查项编码", "Item codes not in the checklist",
        (DISTRICT, Column("item_code", "检查项编码", "item code"),
         Column("issues", "问题数", "issues", "int"), OPEN, VENUES,
         Column("first_found", "首次发现", "first found", "time"),
         Column("last_found", "最近发现", "last found", "time")),
        tuple(rows),
    )  # fmt: skip


BUILDERS: dict[str, Callable[[Facts], Report]] = {
    "summary": phase_summary,
    "overdue": overdue,
    "rebounds": rebounds,
    "streets": street_summary,
    "on_time": on_time,
    "waiting": waiting,
    "unknown_items": unknown_items,
}


def build(facts: Facts, names: Iterable[str]) -> list[Report]:
    return [BUILDERS[name](facts) for name in names]
