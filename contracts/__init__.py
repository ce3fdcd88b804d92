"""The chuangwei event contract (schema_version 1): models, validation and upcasting."""

from contracts.events import (
    EVENT_MODELS,
    EVENT_TYPES,
    PHASES,
    SCHEMA_VERSION,
    Event,
    EventType,
    InspectionRecorded,
    IssueEvent,
    IssueFound,
    Phase,
    RecheckFailed,
    RecheckPassed,
    RectificationDue,
    VenueRegistered,
)
from contracts.validation import (
    MAX_EVENT_BYTES,
    EventRejected,
    FieldError,
    decode_event,
    decode_object,
    encode_event,
)
from contracts.wire import event_subject as subject_for

__all__ = [
    "EVENT_MODELS",
    "EVENT_TYPES",
    "MAX_EVENT_BYTES",
    "PHASES",
    "SCHEMA_VERSION",
    "Event",
    "EventRejected",
    "EventType",
    "FieldError",
    "InspectionRecorded",
    "IssueEvent",
    "IssueFound",
    "Phase",
    "RecheckFailed",
    "RecheckPassed",
    "RectificationDue",
    "VenueRegistered",
    "decode_event",
    "decode_object",
    "encode_event",
    "subject_for",
]
