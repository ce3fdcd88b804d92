"""Hostile messages for ``cw.events.>``: valid events and every way a publisher gets one wrong.

``hostile_messages(count, seed)`` is what the fault suite sends; ``hostile_cases`` gives the
messages with what each one is (its mutation, and the field a rejection must name), for the
tests that check the verdicts. Plain ``random`` with a seed: the same arguments give the same
bytes on every machine, with no hypothesis at call time, and 10,000 take about half a second.

A message's subject is always a realistic, publishable one, ``cw.events.<district>.<venue>.
<type>`` with the tokens of the event the mutation started from, except for
``subject_mismatch``, whose subject names another district, venue or type than its (valid)
payload. Every event id is drawn from the seed, so valid events never repeat within a list.
``hostile_messages`` holds no valid event: each one must be refused; ``hostile_cases`` mixes
valid ones in (30 % by default).
"""

from __future__ import annotations

import json
import random
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from contracts import MAX_EVENT_BYTES
from contracts.events import EVENT_TYPES
from contracts.wire import event_subject
from tests.factories import set_path

Json = dict[str, Any]

DISTRICTS = ("320703", "320706", "320707", "320722", "320723", "320724")
"""Lianyungang's districts and counties: 连云, 海州, 赣榆, 东海, 灌云, 灌南."""
VENUE_PREFIXES = ("LY-FM", "HZ-MALL", "GY-FM", "DH-OT", "GN-MALL")
SUBJECT_MISMATCH = "district/venue_id/event_type"
"""The field a subject that disagrees with its payload is dead-lettered under."""
ENVELOPE_REQUIRED = (
    "event_id",
    "event_type",
    "schema_version",
    "occurred_at",
    "source",
    "district",
    "venue_id",
    "data",
)
DATA_REQUIRED = {
    "VenueRegistered": ("name", "kind", "first_responsible"),
    "InspectionRecorded": ("inspection_id", "kind"),
    "IssueFound": ("issue_id", "item_code", "severity"),
    "RectificationDue": ("issue_id", "order_no", "due_at"),
    "RecheckFailed": ("issue_id",),
    "RecheckPassed": ("issue_id",),
}
LIMITS = {"source": 64, "data.name": 128, "data.description": 2000, "data.note": 2000,
          "data.order_no": 64, "data.inspector": 64, "data.street": 64, "data.address": 256,
          "data.reason": 2000, "data.assignee": 64, "data.category": 64}  # fmt: skip
"""Length limits of free texts, by path (the contract's), for over-long values."""

BAD_TIMESTAMPS = (
    "2023-03-15T10:05:00",  # no offset
    "2023-03-15 10:05:00+08:00",
    "2023-03-15T10:05:00+0800",
    "2023-03-15T10:05:00+08",
    "2023-03-15T10:05+08:00",
    "2016-12-31T23:59:60Z",
    "2023-02-30T10:05:00+08:00",
    "2023-02-29T10:05:00+08:00",
    "2023-03-15T24:00:00+08:00",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "2100-01-02T00:00:00+14:00",
    "2023-03-15T10:05:00+14:30",
    "2023-03-15T10:05:00+08:00\n",
    "2023-03-15",
    "15/03/2023 10:05",
    "1678846000",
    "",
)
BAD_UUIDS = (
    "6f1c2a9e8d1b4c559a510b7d2f9e3c10",
    "urn:uuid:6f1c2a9e-8d1b-4c55-9a51-0b7d2f9e3c10",
    "{6f1c2a9e-8d1b-4c55-9a51-0b7d2f9e3c10}",
    "6f1c2a9e-8d1b-4c55-9a51-0b7d2f9e3c1",
    "6f1c2a9e-8d1b-4c55-9a51-0b7d2f9e3c10\n",
    "6g1c2a9e-8d1b-4c55-9a51-0b7d2f9e3c10",
    "",
)
BAD_DISTRICTS = ("32070", "3207031", "32O703", "320703\n", " 320703", "", "连云区", "３２０７０３")
BAD_VENUES = ("LY.FM.001", "LY FM 001", "*", ">", "", "LY-FM-001\n", "场所-1", "LY/FM")
BAD_ITEM_CODES = ("fm-3f", "FM3F", "FM-", "-3F", "FM-3F-A-B-C", "FM-3F\n", "")
BAD_PHONES = ("12", "138-0000-0000x", "1380000000" * 4, "13800000000\n", "")
WRONG_VERSIONS: tuple[Any, ...] = (2, 0, -1, "1", True, 1.5, None, [1], 10**30)
UNKNOWN_TYPES = ("IssueClosed", "issuefound", "", "Issue Found", "VenueRegistered ")
EXTRA_KEYS = ("colour", "颜色", "eventId", "Data", "data ", "__proto__", "a.b", "")
NOT_OBJECTS = (b"[]", b'"IssueFound"', b"1", b"null", b"true", b"[{}]")


@dataclass(frozen=True, slots=True)
class Case:
    """One message, and what it is."""

    subject: str
    payload: bytes
    mutation: str
    field: str | None
    """The field a rejection must name (a rejection may name a field below it), ``(event)``
    for a message that is not a JSON object, ``None`` for a valid event, and ``"?"`` where a
    test cannot tell in advance."""


# --- valid events -----------------------------------------------------------------------------


def _moment(rng: random.Random) -> str:
    day = rng.randint(1, 28)
    month = rng.randint(1, 12)
    hour, minute, second = rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59)
    fraction = rng.choice(("", "", ".5", f".{rng.randint(0, 999_999):06d}"))
    offset = rng.choice(("+08:00", "+08:00", "+08:00", "Z", "-05:00", "+14:00"))
    return f"2023-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}{fraction}{offset}"


def _person(rng: random.Random) -> Json:
    person: Json = {"name": rng.choice(("王建国", "李秀英", "张伟", "刘洋", "陈静"))}
    if rng.random() < 0.8:
        person["phone"] = rng.choice(("13800000000", "0518-82310103", "+86 138 0000 0000"))
    return person


def _data(rng: random.Random, event_type: str, venue: str) -> Json:
    issue = f"ISS-{venue}-{rng.randint(1, 6)}"
    if event_type == "VenueRegistered":
        data: Json = {
            "name": rng.choice(("墟沟农贸市场", "海连路农贸市场", "苏宁广场", "东海县便民超市")),
            "kind": rng.choice(("mall_supermarket", "farmers_market", "other")),
            "first_responsible": _person(rng),
        }
        if rng.random() < 0.7:
            data["street"] = rng.choice(("墟沟街道", "连云街道", "海州街道"))
        if rng.random() < 0.5:
            data["address"] = "连云港市连云区海棠中路 " + str(rng.randint(1, 300)) + " 号"
        if rng.random() < 0.5:
            data["officer"] = _person(rng)
        return data
    if event_type == "InspectionRecorded":
        data = {
            "inspection_id": f"INS-{rng.randint(1, 99_999):05d}",
            "kind": rng.choice(("self_check", "supervision", "look_back", "re_review")),
        }
        if rng.random() < 0.6:
            checked = rng.randint(0, 60)
            data["items_checked"] = checked
            data["items_failed"] = rng.randint(0, checked)
        if rng.random() < 0.5:
            data["inspector"] = rng.choice(("刘洋", "市创卫办 赵敏"))
        return data
    if event_type == "IssueFound":
        data = {
            "issue_id": issue,
            "item_code": rng.choice(("FM-3F", "FM-1A", "MALL-AED", "OT-2B-3")),
            "severity": rng.choice(("minor", "major", "critical")),
        }
        if rng.random() < 0.6:
            data["description"] = rng.choice(("熟食区未设防蝇设施", "垃圾桶未加盖", "灭火器过期"))
        if rng.random() < 0.4:
            data["evidence"] = [f"IMG-{rng.randint(1, 9999)}.jpg" for _ in range(rng.randint(0, 4))]
        if rng.random() < 0.4:
            data["category"] = data["item_code"].split("-")[0]
        return data
    if event_type == "RectificationDue":
        data = {
            "issue_id": issue,
            "order_no": f"LY-ZG-2023-{rng.randint(1, 999):03d}",
            "due_at": _moment(rng),
        }
        if rng.random() < 0.5:
            data["assignee"] = "王建国"
        return data
    data = {"issue_id": issue}
    if rng.random() < 0.5:
        data["note"] = "已整改" if event_type == "RecheckPassed" else "仍未整改"
    return data


def valid_event(rng: random.Random) -> Json:
    """A realistic event of any type, valid by the contract."""
    district = rng.choice(DISTRICTS)
    venue = f"{rng.choice(VENUE_PREFIXES)}-{rng.randint(1, 40):03d}"
    event_type = rng.choice(EVENT_TYPES)
    obj: Json = {
        "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "event_type": event_type,
        "schema_version": 1,
        "occurred_at": _moment(rng),
        "source": rng.choice(("ly-inspection-app", "hz-street-office", "market-supervision")),
        "district": district,
        "venue_id": venue,
        "data": _data(rng, event_type, venue),
    }
    if rng.random() < 0.3:
        obj["phase"] = rng.choice(("self_check", "re_review", "long_term"))
    return obj


# --- mutations: each changes one thing and says which field a rejection must name ------------

Mutation = Callable[[random.Random, Json], tuple[bytes, str | None]]


def _dump(obj: Any) -> bytes:
    # json, not orjson: it writes integers beyond 64 bits, which a publisher may send.
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def _paths(obj: Json) -> list[str]:
    """The dotted paths of the event's values (persons' fields included, list items not)."""
    out = []
    for key, value in obj.items():
        out.append(key)
        if isinstance(value, dict):
            out.extend(f"{key}.{sub}" for sub in _paths(value))
    return out


def _get(obj: Json, path: str) -> Any:
    node: Any = obj
    for p in path.split("."):
        node = node[p]
    return node


def _string_paths(obj: Json) -> list[str]:
    return [p for p in _paths(obj) if isinstance(_get(obj, p), str)]


def _missing_required(rng: random.Random, obj: Json) -> tuple[bytes, str | None]:
    required = [*ENVELOPE_REQUIRED, *(f"data.{k}" for k in DATA_REQUIRED[obj["event_type"]])]
    if "first_responsible" in obj["data"]:
        required.append("data.first_responsible.name")
    path = rng.choice(required)
    set_path(obj, path, ...)
    return _dump(obj), path


def _wrong_type(rng: random.Random, obj: Json) -> tuple[bytes, str | None]:
    path = rng.choice(_paths(obj))
    current = _get(obj, path)
    if isinstance(current, str):
        choices: list[Any] = [5, 1.5, True, [current], {"value": current}]
    elif isinstance(current, bool | int):
        choices = [str(current), [current], {"n": current}, "five"]
    elif isinstance(current, dict):
        choices = ["{}", [current], 7, False]
    else:
        choices = ["IMG-1.jpg", {"0": "IMG-1.jpg"}, 3]
    set_path(obj, path, rng.choice(choices))
    return _dump(obj), path


def _null_required(rng: random.Random, obj: Json) -> tuple[bytes, str | None]:
    path = rng.choice(
        [*ENVELOPE_REQUIRED, *(f"data.{k}" for k in DATA_REQUIRED[obj["event_type"]])]
    )
    set_path(obj, path, None)
    return _dump(obj), path


def _extra_field(rng: random.Random, obj: Json) -> tuple[bytes, str | None]:
    where = rng.choice(["", "data", "data.first_responsible"])
    if where == "data.first_responsible" and "first_responsible" not in obj["data"]:
        where = "data"
    key = rng.choice(EXTRA_KEYS)
    node = _get(obj, where) if where else obj
    node[key] = rng.choice(["红", 1, None, {"nested": True}, []])
    # A key that is empty, or holds a dot, a quote or white space, is named as JSON writes it.
    named = key if re.fullmatch(r'[^\s."\\]+', key) else json.dumps(key, ensure_ascii=False)
    return _dump(obj), f"{where}.{named}" if where else named


def _empty_value(rng: random.Random, obj: Json) -> tuple[bytes, str | None]:
    path = rng.choice(_string_paths(obj))
    set_path(obj, path, "")
    return _dump(obj), path


def _out_of_range(rng: random.Random, obj: Json) -> tuple[bytes, str | None]:
    data = obj["data"]
    if obj["event_type"] == "InspectionRecorded":
        key = rng.choice(("items_checked", "items_failed"))
        data[key] = rng.choice((-1, 100_001, 2**63, -(2**70), 5.5))
        return _dump(obj), f"data.{key}"
    if obj["event_type"] == "IssueFound":
        data["evidence"] = [f"IMG-{i}.jpg" for i in range(rng.choice((51, 200)))]
        return _dump(obj), "data.evidence"
    if obj["event_type"] == "VenueRegistered":
        path = "data.kind"
    else:
        path = "data.severity" if obj["event_type"] == "IssueFound" else "phase"
    set_path(obj, path, rng.choice(("unknown", "MAJOR", "re-review", "第二阶段")))
    return _dump(obj), path


def _bad_timestamp(rng: random.Random, obj: Json) -> tuple[bytes, str | None]:
    path = "data.due_at" if "due_at" in obj["data"] and rng.random() < 0.5 else "occurred_at"
    set_path(obj, path, rng.choice(BAD_TIMESTAMPS))
    return _dump(obj), path


def _bad_uuid(rng: random.Random, obj: Json) -> tuple[bytes, str | None]:
    obj["event_id"] = rng.choice(BAD_UUIDS)
    return _dump(obj), "event_id"


def _bad_token(rng: random.Random, obj: Json) -> tuple[bytes, str | None]:
    choice = rng.choice(("district", "venue_id", "item_code", "phone"))
    if choice == "item_code" and obj["event_type"] == "IssueFound":
        obj["data"]["item_code"] = rng.choice(BAD_ITEM_CODES)
        return _dump(obj), "data.item_code"
    if choice == "phone" and obj["event_type"] == "VenueRegistered":
        obj["data"]["first_responsible"]["phone"] = rng.choice(BAD_PHONES)
        return _dump(obj), "data.first_responsible.phone"
    if choice == "venue_id":
        obj["venue_id"] = rng.choice(BAD_VENUES)
        return _dump(obj), "venue_id"
    obj["district"] = rng.choice(BAD_DISTRICTS)
    return _dump(obj), "district"


def _over_long(rng: random.Random, obj: Json) -> tuple[bytes, str | None]:
    candidates = [p for p in LIMITS if p == "source" or p.split(".", 1)[1] in obj["data"]]
    candidates += ["venue_id", "data.issue_id"] if "issue_id" in obj["data"] else ["venue_id"]
    path = rng.choice(candidates)
    limit = LIMITS.get(path, 64)
    set_path(obj, path, rng.choice(("市", "x", "\U0001f600")) * (limit + rng.choice((1, 1, 50))))
    return _dump(obj), path


def _nul(rng: random.Random, obj: Json) -> tuple[bytes, str | None]:
    path = rng.choice(_string_paths(obj))
    text = _get(obj, path)
    at = rng.randint(0, len(text))
    set_path(obj, path, text[:at] + "\x00" + text[at:])
    return _dump(obj), path


def _body_of_another_type(rng: random.Random, obj: Json) -> tuple[bytes, str | None]:
    rechecks = {"RecheckFailed", "RecheckPassed"}
    same_shape = rechecks if obj["event_type"] in rechecks else {obj["event_type"]}
    obj["event_type"] = rng.choice([t for t in EVENT_TYPES if t not in same_shape])
    return _dump(obj), "data"


def _unknown_type(rng: random.Random, obj: Json) -> tuple[bytes, str | None]:
    obj["event_type"] = rng.choice(UNKNOWN_TYPES)
    return _dump(obj), "event_type"


def _wrong_version(rng: random.Random, obj: Json) -> tuple[bytes, str | None]:
    obj["schema_version"] = rng.choice(WRONG_VERSIONS)
    return _dump(obj), "schema_version"


def _broken_json(rng: random.Random, obj: Json) -> tuple[bytes, str | None]:
    raw = _dump(obj)
    how = rng.randrange(7)
    if how == 0:
        return raw[: rng.randrange(len(raw))], "(event)"  # cut short
    if how == 1:
        return raw[:-1] + b",}", "(event)"  # trailing comma
    if how == 2:
        return raw.replace(b'"', b"'"), "(event)"
    if how == 3:
        return raw.replace(b'"schema_version":1', b'"schema_version":NaN'), "(event)"
    if how == 4:
        return raw + b"{}", "(event)"
    if how == 5:
        return b"\xef\xbb\xbf" + raw, "(event)"  # a byte-order mark
    return rng.choice(NOT_OBJECTS), "(event)"


def _not_utf8(rng: random.Random, obj: Json) -> tuple[bytes, str | None]:
    raw = _dump(obj)
    how = rng.randrange(4)
    if how == 0 and any(ord(c) > 127 for c in raw.decode()):
        # A district system writing GBK, the national encoding, instead of UTF-8.
        return raw.decode().encode("gb18030"), "(event)"
    if how == 1:
        return raw.replace(b'"source":"', b'"source":"\xff\xfe', 1), "(event)"
    if how == 2:
        return raw.replace(b'"source":"', b'"source":"\\ud800', 1), "(event)"  # lone surrogate
    return raw.replace(b'"source":"', b'"source":"\xc3\x28', 1), "(event)"


def _too_large(rng: random.Random, obj: Json) -> tuple[bytes, str | None]:
    obj["data"]["description"] = "问" * (MAX_EVENT_BYTES // 3 + rng.randint(1, 100))
    return _dump(obj), "(event)"


def _duplicate_key(rng: random.Random, obj: Json) -> tuple[bytes, str | None]:
    # A key twice, the second time with another value. Every JSON reader here (pydantic's,
    # Python's, orjson, PostgreSQL's jsonb, JavaScript's) takes the last, so the payload says
    # something else than the subject copied from the first.
    key = rng.choice(("district", "venue_id", "event_type", "schema_version"))
    field = SUBJECT_MISMATCH
    if key == "district":
        value: Any = rng.choice([d for d in DISTRICTS if d != obj["district"]])
    elif key == "venue_id":
        value = obj["venue_id"] + "Z"
    elif key == "event_type":
        value = rng.choice([t for t in EVENT_TYPES if t != obj["event_type"]])
        rechecks = {"RecheckFailed", "RecheckPassed"}
        field = SUBJECT_MISMATCH if {value, obj["event_type"]} == rechecks else "data"
    else:
        value, field = 2, "schema_version"
    return _dump(obj)[:-1] + b',"' + key.encode() + b'":' + _dump(value) + b"}", field


def _deep_nesting(rng: random.Random, obj: Json) -> tuple[bytes, str | None]:
    # A shallow nest is an unknown field like any other; a deep one is refused as malformed
    # before it is parsed (a depth bomb), whatever the depth a JSON parser would go to.
    depth = rng.choice((50, 600, 20_000))
    raw = _dump(obj)[:-1] + b',"nest":' + b"[" * depth + b"]" * depth + b"}"
    return raw, "nest" if depth < 100 else "(event)"


def _many_faults(rng: random.Random, obj: Json) -> tuple[bytes, str | None]:
    # Thousands of unknown keys in under 64 KiB: a rejection that lists them all is slow to
    # write and a log line of hundreds of kilobytes.
    for i in range(rng.choice((30, 3_000, 6_000))):
        obj[f"k{i}"] = 1
    return _dump(obj), "k0"


MUTATIONS: dict[str, tuple[int, Mutation]] = {
    "missing_required": (8, _missing_required),
    "wrong_type": (8, _wrong_type),
    "null_required": (3, _null_required),
    "extra_field": (6, _extra_field),
    "empty_value": (5, _empty_value),
    "out_of_range": (5, _out_of_range),
    "bad_timestamp": (7, _bad_timestamp),
    "bad_uuid": (4, _bad_uuid),
    "bad_token": (6, _bad_token),
    "over_long": (4, _over_long),
    "nul": (3, _nul),
    "body_of_another_type": (4, _body_of_another_type),
    "unknown_type": (3, _unknown_type),
    "wrong_version": (4, _wrong_version),
    "broken_json": (6, _broken_json),
    "not_utf8": (4, _not_utf8),
    "too_large": (1, _too_large),
    "duplicate_key": (2, _duplicate_key),
    "deep_nesting": (1, _deep_nesting),
    "many_faults": (1, _many_faults),
}
"""Each mutation with its weight; valid events and subject mismatches come on top."""
VALID_SHARE = 0.3
SUBJECT_MISMATCH_SHARE = 0.08
_NAMES = list(MUTATIONS)
_WEIGHTS = [MUTATIONS[n][0] for n in _NAMES]


def _mismatched(rng: random.Random, obj: Json) -> str:
    """A publishable subject that is not the payload's: another district (a district speaking
    for another), venue or type, a token more or fewer, or the type in lower case."""
    which = rng.randrange(6)
    district, venue, event_type = obj["district"], obj["venue_id"], obj["event_type"]
    if which == 0:
        district = rng.choice([d for d in DISTRICTS if d != district])
    elif which == 1:
        venue = venue + "X"
    elif which == 2:
        event_type = rng.choice([t for t in EVENT_TYPES if t != event_type])
    elif which == 3:
        return event_subject(district, venue, event_type) + ".v1"
    elif which == 4:
        return f"cw.events.{district}.{venue}"
    else:
        event_type = event_type.lower()
    return event_subject(district, venue, event_type)


def hostile_case(rng: random.Random, valid_share: float = VALID_SHARE) -> Case:
    """One message: valid (``valid_share``), a subject that disagrees with its valid payload
    (about 8 %), or one mutation of a valid event."""
    obj = valid_event(rng)
    subject = event_subject(obj["district"], obj["venue_id"], obj["event_type"])
    roll = rng.random()
    if roll < valid_share:
        return Case(subject, _dump(obj), "valid", None)
    if roll < valid_share + SUBJECT_MISMATCH_SHARE:
        return Case(_mismatched(rng, obj), _dump(obj), "subject_mismatch", SUBJECT_MISMATCH)
    name = rng.choices(_NAMES, _WEIGHTS)[0]
    payload, field = MUTATIONS[name][1](rng, obj)
    return Case(subject, payload, name, field)


def hostile_cases(count: int, seed: int, valid_share: float = VALID_SHARE) -> list[Case]:
    """``count`` messages with what each is, valid events among them (``valid_share``); the
    same for the same ``seed``, and a shorter list is the start of a longer one."""
    rng = random.Random(seed)
    return [hostile_case(rng, valid_share) for _ in range(count)]


def hostile_messages(count: int, seed: int) -> list[tuple[str, bytes]]:
    """``count`` (subject, payload) pairs for ``cw.events.>``, each one a mistake the projector
    must refuse with a reason naming a field (no valid event among them): a deterministic mix
    of every mutation above and of subjects that disagree with their payload."""
    return [(c.subject, c.payload) for c in hostile_cases(count, seed, valid_share=0.0)]
