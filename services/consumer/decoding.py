"""How a delivered message of ``CW_EVENTS`` becomes an event or a rejection: the same for every
consumer of the stream (the projector, the reminders service)."""

from __future__ import annotations

import logging

from contracts import EventRejected, decode_event
from services.common.campaign import Campaign
from services.consumer.model import Delivery, Prepared, Rejection, StreamEvent

log = logging.getLogger("cw.consumer")

UNKNOWN_DISTRICT = "unknown_district"
"""The reason of an event whose district the campaign file does not list."""


def classify(exc: EventRejected) -> str:
    """A small, fixed set of reasons for the metric label (the full reason is in the DLQ)."""
    first = exc.errors[0] if exc.errors else None
    if first is None:
        return "invalid_field"
    if first.field == "(event)":
        if first.reason.startswith("malformed JSON"):
            return "malformed_json"
        if "bytes; the limit" in first.reason:
            return "too_large"
        return "not_an_object"
    if first.field == "event_type":
        return "unknown_event_type"
    if first.field == "schema_version":
        return "schema_version"
    return "invalid_field"


def decode_delivery(d: Delivery, campaign: Campaign) -> Prepared:
    try:
        event = decode_event(d.data)
    except EventRejected as exc:
        return Rejection(d, exc.reason, exc.first_field, classify(exc))
    except Exception as exc:
        # A registered upcaster that crashes on an odd event: that event is unreadable, which
        # is bad input too; it must reach the dead letters, not vanish in a callback.
        # Its message may quote the event: the dead letter keeps it, the log names the type.
        log.error("event at sequence %s could not be read (%s)", d.seq, type(exc).__name__)
        return Rejection(d, f"unreadable: {type(exc).__name__}: {exc}", "(event)", "unreadable")
    if event.subject != d.subject:
        # With per-district permissions on subjects, the subject is what NATS authorised: an
        # envelope naming another district or venue must not slip past them.
        return Rejection(
            d,
            f"subject {d.subject} does not match the event (expected {event.subject})",
            "district/venue_id/event_type",
            "subject_mismatch",
        )
    if not campaign.names.knows_district(event.district):
        # Not a district of this campaign: projected, it would be a phantom district in every
        # report. Kept until the campaign file names it, then replayed (cw dlq replay).
        return Rejection(
            d,
            f"district {event.district} is not one of the campaign's districts "
            f"({campaign.name}); once the campaign file lists it and the projector and the "
            "reminders service are restarted, replay this dead letter (cw dlq replay)",
            "district",
            UNKNOWN_DISTRICT,
        )
    phase = event.phase or campaign.phase_of(event.occurred_at)
    return StreamEvent(d.seq, event, d.data, d.subject, phase, d.headers)
