"""The names on the wire: streams, subjects and headers, as any publisher or reader must spell them.

These are contract, like the event models: a district system in another language, a consumer
written later and the generated AsyncAPI document all read them from here. How the streams are
*created* (limits, retention, what ``cw init`` changes) is not contract and lives in
``services/common/streams.py``.

Each message family has its own stream and subject tree, so that a consumer of one never sees
the other and each can keep its own retention:

- **events** (``CW_EVENTS``, ``cw.events.>``): the system of record, the union in ``events.py``;
- **reminders** (``CW_REMINDERS``, ``cw.reminders.>``): a second family, derived from events
  by the reminders service and read by notification consumers; the model is in
  ``reminders.py``, its schema in ``schema/Reminder.v1.json``;
- **dead letters** (``CW_DEAD_LETTERS``, ``cw.dlq.<stage>``): whatever a stage rejected, with
  the ``Cw-Dlq-*`` headers below. The intake's carry the publishing district as a last token,
  ``cw.dlq.intake.<district>``: with per-district permissions a publisher may write its own
  district's dead letters and no one else's.
"""

from __future__ import annotations

EVENTS_STREAM = "CW_EVENTS"
EVENTS_SUBJECTS = "cw.events.>"
EVENT_SUBJECT_ADDRESS = "cw.events.{district}.{venue_id}.{event_type}"
"""The subject of one event, with the payload's district, venue_id and event_type as tokens."""

REMINDERS_STREAM = "CW_REMINDERS"
REMINDERS_SUBJECTS = "cw.reminders.>"
REMINDER_SUBJECT_ADDRESS = "cw.reminders.{district}.{venue_id}.{kind}"
"""A reminder about a venue's issue, with the payload's district, venue_id and kind as tokens."""
REMINDER_DIGEST_SUBJECT_ADDRESS = "cw.reminders.{district}.digest"
"""A district's daily digest (kind ``digest``, no venue): one token fewer than a venue's
reminder, so no subject matches both addresses."""

DEAD_LETTERS_STREAM = "CW_DEAD_LETTERS"
DEAD_LETTERS_SUBJECTS = "cw.dlq.>"
DEAD_LETTER_SUBJECT_PREFIX = "cw.dlq."
DEAD_LETTER_SUBJECT_ADDRESS = "cw.dlq.{stage}"
INTAKE_STAGE = "intake"
INTAKE_DEAD_LETTER_SUBJECT_ADDRESS = "cw.dlq.intake.{district}"
"""What a district's publisher (``cw publish``) rejected: the district that published it."""
UNKNOWN_DISTRICT = "unknown"
"""The last token of an intake dead letter whose publisher named no district and whose line
names none that can be read (an unrestricted publisher, e.g. the operator)."""

MSG_ID = "Nats-Msg-Id"
"""JetStream's de-duplication header: an event's ``event_id``; a dead letter's own id."""

DLQ_STAGE = "Cw-Dlq-Stage"
DLQ_REASON = "Cw-Dlq-Reason"
DLQ_FIELD = "Cw-Dlq-Field"
DLQ_SUBJECT = "Cw-Dlq-Subject"
DLQ_STREAM_SEQ = "Cw-Dlq-Stream-Seq"
DLQ_LINE = "Cw-Dlq-Line"
DLQ_REJECTED_AT = "Cw-Dlq-At"
DLQ_ORIGINAL_MSG_ID = "Cw-Dlq-Original-Msg-Id"
DLQ_FILE = "Cw-Dlq-File"
"""The input file a rejected line came from (intake)."""
DLQ_TRUNCATED = "Cw-Dlq-Truncated"
"""The original size, when only the start of an oversized line could be kept."""
DLQ_KIND = "Cw-Dlq-Kind"
"""The reason's class, one of a small fixed set (``invalid_field``, ``venue_mismatch``, ...)."""
DLQ_ISSUE_VENUE = "Cw-Dlq-Issue-Venue"
"""For ``venue_mismatch``: the venue the issue belongs to, where a fix must be published."""
DLQ_TARGET = "Cw-Dlq-Target"
"""For the notifier: the target (its name in the notify file) that refused a reminder; one
reminder refused by two targets is two dead letters."""


def event_subject(district: str, venue_id: str, event_type: str) -> str:
    """``cw.events.<district>.<venue_id>.<event_type>``."""
    return f"cw.events.{district}.{venue_id}.{event_type}"


def dead_letter_subject(stage: str) -> str:
    """Where ``stage`` (``projector``, ``notifier``, ...) puts what it rejects; the intake's are
    per district (``intake_dead_letter_subject``)."""
    return f"{DEAD_LETTER_SUBJECT_PREFIX}{stage}"


def intake_dead_letter_subject(district: str) -> str:
    """``cw.dlq.intake.<district>``: where the intake of ``district``'s publisher puts what it
    rejects."""
    return f"{DEAD_LETTER_SUBJECT_PREFIX}{INTAKE_STAGE}.{district}"


def intake_dead_letter_district(subject: str) -> str | None:
    """The district of ``cw.dlq.intake.<district>`` (``None`` for another subject, the older
    ``cw.dlq.intake`` and ``UNKNOWN_DISTRICT``)."""
    prefix = f"{DEAD_LETTER_SUBJECT_PREFIX}{INTAKE_STAGE}."
    district = subject.removeprefix(prefix) if subject.startswith(prefix) else ""
    return district if district and district != UNKNOWN_DISTRICT else None


def dead_letter_stage(subject: str) -> str:
    """The stage of a dead letter's subject: the token after ``cw.dlq.`` (``intake`` for
    ``cw.dlq.intake.320703`` and for the older ``cw.dlq.intake``)."""
    return subject.removeprefix(DEAD_LETTER_SUBJECT_PREFIX).split(".", 1)[0]
