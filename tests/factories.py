"""Valid events for tests, built through the contract's own validation."""

from __future__ import annotations

import itertools
import json
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from contracts import Event, decode_object, encode_event

CST = timezone(timedelta(hours=8))
DISTRICT = "320703"
_counter = itertools.count(1)


def at(text: str) -> datetime:
    """``at("2023-03-15 10:00")`` in China Standard Time."""
    return datetime.fromisoformat(text).replace(tzinfo=CST)


def event(
    event_type: str,
    venue_id: str,
    when: datetime,
    data: dict[str, Any],
    *,
    district: str = DISTRICT,
    phase: str | None = None,
    event_id: uuid.UUID | None = None,
) -> Event:
    obj: dict[str, Any] = {
        "event_id": str(event_id or uuid.uuid4()),
        "event_type": event_type,
        "schema_version": 1,
        "occurred_at": when.isoformat(),
        "source": "cw-tests",
        "district": district,
        "venue_id": venue_id,
        "data": data,
    }
    if phase is not None:
        obj["phase"] = phase
    return decode_object(obj)


def venue(venue_id: str, when: datetime, kind: str = "farmers_market", name: str | None = None,
          street: str | None = None, **kw: Any) -> Event:  # fmt: skip
    data: dict[str, Any] = {"name": name or f"测试场所 {venue_id}", "kind": kind,
            "first_responsible": {"name": "王建国", "phone": "13800000000"}}  # fmt: skip
    if street is not None:
        data["street"] = street
    return event("VenueRegistered", venue_id, when, data, **kw)


def inspection(venue_id: str, when: datetime, kind: str = "supervision",
               items_checked: int | None = None, items_failed: int | None = None,
               **kw: Any) -> Event:  # fmt: skip
    data: dict[str, Any] = {"inspection_id": f"INS-{next(_counter):05d}", "kind": kind}
    if items_checked is not None:
        data["items_checked"] = items_checked
    if items_failed is not None:
        data["items_failed"] = items_failed
    return event("InspectionRecorded", venue_id, when, data, **kw)


def issue(venue_id: str, issue_id: str, when: datetime, item_code: str = "FM-3F",
          severity: str = "major", **kw: Any) -> Event:  # fmt: skip
    data = {"issue_id": issue_id, "item_code": item_code, "severity": severity,
            "category": item_code.split("-", maxsplit=1)[0],
            "description": "熟食区未设防蝇设施"}  # fmt: skip
    return event("IssueFound", venue_id, when, data, **kw)


def due(venue_id: str, issue_id: str, when: datetime, due_at: datetime, order_no: str = "ZG-1",
        **kw: Any) -> Event:  # fmt: skip
    data = {"issue_id": issue_id, "order_no": order_no, "due_at": due_at.isoformat()}
    return event("RectificationDue", venue_id, when, data, **kw)


def recheck_failed(venue_id: str, issue_id: str, when: datetime, **kw: Any) -> Event:
    return event("RecheckFailed", venue_id, when, {"issue_id": issue_id}, **kw)


def recheck_passed(venue_id: str, issue_id: str, when: datetime, **kw: Any) -> Event:
    return event("RecheckPassed", venue_id, when, {"issue_id": issue_id}, **kw)


def wire(ev: Event) -> bytes:
    return encode_event(ev)


def set_path(obj: dict[str, Any], path: str, value: Any) -> None:
    """Set the dotted ``path`` of ``obj`` to ``value`` in place (remove it, for ``...``)."""
    *parents, last = path.split(".")
    node = obj
    for p in parents:
        node = node[p]
    if value is ...:
        del node[last]
    else:
        node[last] = value


def with_path(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``base`` with the dotted ``path`` set to ``value`` (removed, for ``...``)."""
    obj: dict[str, Any] = json.loads(json.dumps(base))
    set_path(obj, path, value)
    return obj
