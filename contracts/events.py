"""The event contract: what other district systems publish on ``cw.events.>``.

Every model is frozen, forbids unknown fields and is strict (no silent coercion of ``"5"`` to
``5`` or of a number to a timestamp), so that a publisher learns about a mistake from the first
event instead of from a wrong report months later.
"""

from __future__ import annotations

from typing import Annotated, Literal, TypeAlias, get_args
from uuid import UUID

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
)

from contracts.rules import (
    INSTANT_RULE,
    UUID_PATTERN,
    UUID_REASON,
    CanonicalUuid,
    Instant,
    Integral,
    NoNul,
    VersionNumber,
)
from contracts.wire import event_subject

SCHEMA_VERSION = 1
"""The version this code reads natively; older or newer versions go through ``upcasting``."""

EventType: TypeAlias = Literal[
    "VenueRegistered",
    "InspectionRecorded",
    "IssueFound",
    "RectificationDue",
    "RecheckFailed",
    "RecheckPassed",
]
EVENT_TYPES: tuple[str, ...] = get_args(EventType)

Phase: TypeAlias = Literal["self_check", "re_review", "long_term"]
PHASES: tuple[str, ...] = get_args(Phase)

VenueKind: TypeAlias = Literal["mall_supermarket", "farmers_market", "other"]
InspectionKind: TypeAlias = Literal["self_check", "supervision", "look_back", "re_review"]
Severity: TypeAlias = Literal["minor", "major", "critical"]

Text64 = Annotated[str, StringConstraints(min_length=1, max_length=64), NoNul()]
Text128 = Annotated[str, StringConstraints(min_length=1, max_length=128), NoNul()]
Text256 = Annotated[str, StringConstraints(min_length=1, max_length=256), NoNul()]
Text2000 = Annotated[str, StringConstraints(min_length=1, max_length=2000), NoNul()]
IDENTIFIER = r"^[A-Za-z0-9_.:-]{1,64}$"
PHONE = r"^[0-9+() -]{3,32}$"
VENUE_ID = r"^[A-Za-z0-9_-]{1,64}$"
DISTRICT_CODE = r"^[0-9]{6}$"
ITEM_CODE = r"^[A-Z][A-Z0-9]{0,15}(-[A-Z0-9]{1,16}){1,3}$"
PATTERN_REASONS: dict[str, str] = {
    IDENTIFIER: 'may only contain letters, digits, "_", ".", ":" and "-" (1–64 characters)',
    PHONE: 'may only contain digits, spaces, "+", "(", ")" and "-" (3–32 characters)',
    VENUE_ID: 'may only contain letters, digits, "_" and "-" (1–64 characters); it is a subject '
    'token, so no dots, spaces, "*" or ">"',
    DISTRICT_CODE: "must be a 6-digit administrative code such as 320703",
    ITEM_CODE: "must be a checklist item code such as FM-3F or MALL-AED: 2 to 4 parts of "
    'capital letters and digits joined by "-"',
    UUID_PATTERN: UUID_REASON,
}
"""Each pattern of the contract in words, for rejections a publisher's developer can read."""

Identifier = Annotated[str, StringConstraints(pattern=IDENTIFIER), NoNul()]
Phone = Annotated[str, StringConstraints(pattern=PHONE), NoNul()]
VenueId = Annotated[str, StringConstraints(pattern=VENUE_ID), NoNul()]
DistrictCode = Annotated[str, StringConstraints(pattern=DISTRICT_CODE), NoNul()]
ItemCode = Annotated[str, StringConstraints(pattern=ITEM_CODE), NoNul()]
Moment = Annotated[AwareDatetime, Instant()]
"""A timestamp: RFC 3339 with an offset, inside the range every reader and the store can hold."""
Uuid = Annotated[UUID, CanonicalUuid()]
Count = Annotated[int, Field(ge=0, le=100_000), Integral()]


class ContractModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class Person(ContractModel):
    """A person the bureau can call: a venue's first responsible person or an officer."""

    name: Text64 = Field(description="Full name.", examples=["王建国"])
    phone: Phone | None = Field(
        default=None, description="Phone number, digits and + ( ) - only.", examples=["13800000000"]
    )


class VenueRegisteredData(ContractModel):
    """A venue enters the campaign, or its registration changes (the latest one wins)."""

    name: Text128 = Field(description="The venue's name.", examples=["连云区海连路农贸市场"])
    kind: VenueKind = Field(
        description="Which point standard applies.", examples=["farmers_market"]
    )
    street: Text64 | None = Field(default=None, description="Street office (街道).")
    address: Text256 | None = Field(default=None, description="Postal address.")
    first_responsible: Person = Field(
        description="The legal representative, first responsible person (第一责任人)."
    )
    officer: Person | None = Field(
        default=None, description="The bureau officer in charge of this venue."
    )


class InspectionRecordedData(ContractModel):
    """A visit happened at a venue."""

    inspection_id: Identifier = Field(description="Unique per inspection.", examples=["INS-00017"])
    kind: InspectionKind = Field(
        description="self_check by the venue, supervision by the bureau, look_back (回头看) "
        "after a deadline, re_review by the state.",
        examples=["supervision"],
    )
    inspector: Text64 | None = Field(default=None, description="Who inspected.")
    items_checked: Count | None = Field(default=None, description="Checklist items checked.")
    items_failed: Count | None = Field(default=None, description="Checklist items that failed.")


class IssueFoundData(ContractModel):
    """One checklist item failed at a venue."""

    issue_id: Identifier = Field(description="Unique per issue.", examples=["ISS-00042"])
    inspection_id: Identifier | None = Field(
        default=None, description="The inspection that found it."
    )
    item_code: ItemCode = Field(
        description="Checklist item code from the catalog, e.g. FM-3F or MALL-AED.",
        examples=["FM-3F"],
    )
    category: Text64 | None = Field(default=None, description="Free grouping, e.g. FM or MALL.")
    severity: Severity = Field(description="How serious the failure is.", examples=["major"])
    description: Text2000 | None = Field(default=None, description="What is wrong, in Chinese.")
    evidence: list[Text256] = Field(
        default_factory=list, max_length=50, description="References such as photo ids."
    )


class RectificationDueData(ContractModel):
    """A rectification order (问题整改交办单) sets or extends an issue's deadline."""

    issue_id: Identifier = Field(description="The issue to rectify.", examples=["ISS-00042"])
    order_no: Text64 = Field(description="Order number (交办单号).", examples=["LY-ZG-2023-031"])
    due_at: Moment = Field(
        description=f"Deadline; a later order replaces it. {INSTANT_RULE}",
        examples=["2023-03-30T17:30:00+08:00"],
    )
    assignee: Text64 | None = Field(default=None, description="Who must rectify.")
    reason: Text2000 | None = Field(default=None, description="Why, or why extended.")


class RecheckFailedData(ContractModel):
    """A recheck found the issue not yet fixed; it stays open."""

    issue_id: Identifier = Field(description="The issue rechecked.", examples=["ISS-00042"])
    inspection_id: Identifier | None = Field(default=None, description="The recheck visit.")
    note: Text2000 | None = Field(default=None, description="What is still wrong.")


class RecheckPassedData(ContractModel):
    """A recheck found the issue fixed; the issue is closed (销号)."""

    issue_id: Identifier = Field(description="The issue rechecked.", examples=["ISS-00042"])
    inspection_id: Identifier | None = Field(default=None, description="The recheck visit.")
    note: Text2000 | None = Field(default=None, description="How it was fixed.")


class EnvelopeBase(ContractModel):
    event_id: Uuid = Field(
        description="Unique per event; also sent as the Nats-Msg-Id header.",
        examples=["6f1c2a9e-8d1b-4c55-9a51-0b7d2f9e3c10"],
    )
    schema_version: Annotated[Literal[1], VersionNumber()] = Field(
        description="Contract version of this event."
    )
    occurred_at: Moment = Field(
        description=f"When it happened. {INSTANT_RULE}",
        examples=["2023-03-15T10:05:00+08:00"],
    )
    source: Text64 = Field(description="The publishing system.", examples=["ly-inspection-app"])
    district: DistrictCode = Field(description="6-digit administrative code.", examples=["320703"])
    venue_id: VenueId = Field(
        description="Venue id, [A-Za-z0-9_-]{1,64}, used as a subject token.",
        examples=["LY-FM-007"],
    )
    phase: Phase | None = Field(
        default=None,
        description="Campaign phase; when absent it is derived from occurred_at by the campaign "
        "calendar.",
    )

    event_type: str

    @property
    def subject(self) -> str:
        return event_subject(self.district, self.venue_id, self.event_type)


class VenueRegistered(EnvelopeBase):
    """A venue registration."""

    event_type: Literal["VenueRegistered"]
    data: VenueRegisteredData


class InspectionRecorded(EnvelopeBase):
    """An inspection visit."""

    event_type: Literal["InspectionRecorded"]
    data: InspectionRecordedData


class IssueFound(EnvelopeBase):
    """An issue found at a venue."""

    event_type: Literal["IssueFound"]
    data: IssueFoundData


class RectificationDue(EnvelopeBase):
    """A rectification deadline set or extended."""

    event_type: Literal["RectificationDue"]
    data: RectificationDueData


class RecheckFailed(EnvelopeBase):
    """A failed recheck."""

    event_type: Literal["RecheckFailed"]
    data: RecheckFailedData


class RecheckPassed(EnvelopeBase):
    """A passed recheck, closing the issue."""

    event_type: Literal["RecheckPassed"]
    data: RecheckPassedData


Event: TypeAlias = Annotated[
    VenueRegistered
    | InspectionRecorded
    | IssueFound
    | RectificationDue
    | RecheckFailed
    | RecheckPassed,
    Field(discriminator="event_type"),
]
EVENT_MODELS: tuple[type[EnvelopeBase], ...] = (
    VenueRegistered,
    InspectionRecorded,
    IssueFound,
    RectificationDue,
    RecheckFailed,
    RecheckPassed,
)

IssueEvent: TypeAlias = RectificationDue | RecheckFailed | RecheckPassed
"""Events that refer to an issue found earlier (and may arrive before it)."""
