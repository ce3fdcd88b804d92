"""Write what a publisher in any language needs, generated from the contract models.

    python -m contracts.generate            # (re)write the files
    python -m contracts.generate --check    # exit 1 and list the files that are out of date

Generated: ``schema/envelope.v1.json`` (every event type, with ``$defs``), one
``schema/<EventType>.v1.json`` per event type, ``schema/Reminder.v1.json`` (the reminder
family), ``asyncapi.json`` (AsyncAPI 3.1), ``examples/events.jsonl`` (the example campaign of
``examples_source``) and ``examples/reminders.jsonl`` (two reminders it leads to). A unit test
compares them with what this module would write, so a model change without regenerating fails
CI.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from contracts import wire
from contracts.events import EVENT_MODELS, EVENT_TYPES, PHASES, SCHEMA_VERSION, EnvelopeBase
from contracts.examples_source import example_events, example_reminders
from contracts.reminders import REMINDER_KINDS, REMINDER_SCHEMA_VERSION, Reminder
from contracts.validation import EVENT_ADAPTER, MAX_EVENT_BYTES
from contracts.wire import (
    DEAD_LETTER_SUBJECT_ADDRESS,
    DEAD_LETTERS_STREAM,
    DEAD_LETTERS_SUBJECTS,
    EVENT_SUBJECT_ADDRESS,
    EVENTS_STREAM,
    EVENTS_SUBJECTS,
    INTAKE_DEAD_LETTER_SUBJECT_ADDRESS,
    REMINDER_DIGEST_SUBJECT_ADDRESS,
    REMINDER_SUBJECT_ADDRESS,
    REMINDERS_STREAM,
    REMINDERS_SUBJECTS,
)

CONTRACTS_DIR = Path(__file__).resolve().parent
SCHEMA_DIR = "schema"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
ID_BASE = "urn:chuangwei:contracts:v1"

Json = dict[str, Any]

MSG_ID_HEADER: Json = {
    "type": "object",
    "required": [wire.MSG_ID],
    "properties": {
        wire.MSG_ID: {
            "type": "string",
            "format": "uuid",
            "description": "The event's event_id. JetStream stores a message with an id it has "
            "seen within the duplicate window once, so a publisher may always retry.",
        }
    },
}

DEAD_LETTER_HEADERS: dict[str, str] = {
    wire.DLQ_STAGE: "Which stage rejected the message: intake (cw publish), projector or notifier. "
    "Readers take the stage from the subject (the token after cw.dlq.), which NATS decides who "
    "may write; a header that says another stage is shown as a false claim.",
    wire.DLQ_REASON: "Why, naming each field: `data.severity: Input should be ...`. Non-ASCII "
    "characters are written as \\uXXXX escapes (headers are ASCII).",
    wire.DLQ_FIELD: "The first field named in the reason (a dotted path such as data.severity, or "
    "(event) for the message as a whole: malformed JSON, too large).",
    wire.DLQ_REJECTED_AT: "When it was rejected, RFC 3339.",
    wire.DLQ_SUBJECT: "The subject the message was read from (stages that read a stream).",
    wire.DLQ_STREAM_SEQ: "Its sequence in that stream (stages that read a stream).",
    wire.DLQ_LINE: "The line of the input file (intake).",
    wire.DLQ_ORIGINAL_MSG_ID: "The Nats-Msg-Id the message was originally published with.",
    wire.MSG_ID: "The dead letter's own id: `<stage>:<stream seq>:<seal>` when a service read "
    "the message from a stream, where the seal is the first 32 hexadecimal digits of an "
    "HMAC-SHA256 of `<stage>:<stream seq>` under the deployment's key, which only the services "
    "read (a district, which may write any id on its own intake subject, cannot write a "
    "service's id first); otherwise (intake) `<stage>:<the first 32 hexadecimal digits of the "
    "SHA-256 of the payload>`. Letters written before the seal have `<stage>:<stream seq>`. "
    "JetStream keeps one copy of a dead letter whose id it has seen within the stream's "
    "duplicate window (24 hours by default), so the same rejection stored twice in that time is "
    "kept once.",
    wire.DLQ_FILE: "The name of the input file (intake).",
    wire.DLQ_KIND: "The reason's class: malformed_json, too_large, unknown_event_type, "
    "schema_version, invalid_field, subject_mismatch, unknown_district (a district the "
    "campaign does not list), venue_mismatch, event_id_reused, unhandled_event_type, unstorable "
    "or unreadable.",
    wire.DLQ_ISSUE_VENUE: "For venue_mismatch: the venue of the issue, where a fixed event "
    "belongs.",
    wire.DLQ_TARGET: "For the notifier: the target (its name in the notify file) that refused the "
    "reminder; the dead letter's Nats-Msg-Id is then `notifier:<stream seq>:<target>:<seal>`, "
    "the seal taken over `notifier:<stream seq>:<target>`.",
    wire.DLQ_TRUNCATED: "Present when the line was longer than the payload kept "
    f"({MAX_EVENT_BYTES} bytes and one more): its size in bytes (intake).",
}


def _dump_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def by_event_type(ref_template: str) -> Json:
    """Standard JSON Schema for "event_type selects the shape": one ``if``/``then`` per type.

    pydantic writes OpenAPI's ``discriminator``, which JSON Schema does not know (strict ajv
    refuses it). A ``oneOf`` would mean the same but report every type's complaints for one
    bad field; with ``if``/``then`` a validator reports the errors of the selected type only,
    at their own path (``/data/severity``).
    """
    return {
        "type": "object",
        "required": ["event_type"],
        "properties": {
            "event_type": {
                "description": "What happened; selects the shape of data.",
                "enum": list(EVENT_TYPES),
            }
        },
        "allOf": [
            {
                "if": {"properties": {"event_type": {"const": name}}},
                "then": {"$ref": ref_template.format(model=name)},
            }
            for name in EVENT_TYPES
        ],
    }


def envelope_schema() -> Json:
    defs = EVENT_ADAPTER.json_schema()["$defs"]
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": f"{ID_BASE}:envelope",
        "title": f"chuangwei event (schema_version {SCHEMA_VERSION})",
        "description": "One event as published on "
        + EVENT_SUBJECT_ADDRESS.replace("{", "<").replace("}", ">")
        + ": an envelope whose event_type selects the shape of data.",
        **by_event_type("#/$defs/{model}"),
        "$defs": defs,
    }


def event_schema(model: type[EnvelopeBase]) -> Json:
    schema = model.model_json_schema()
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": f"{ID_BASE}:{model.__name__}",
        **schema,
    }


def reminder_schema() -> Json:
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": f"{ID_BASE.removesuffix(':v1')}:reminders:v{REMINDER_SCHEMA_VERSION}:Reminder",
        "description": "One reminder as published on "
        + REMINDER_SUBJECT_ADDRESS.replace("{", "<").replace("}", ">")
        + " (a digest on "
        + REMINDER_DIGEST_SUBJECT_ADDRESS.replace("{", "<").replace("}", ">")
        + "). "
        + (Reminder.__doc__ or "").strip(),
        **Reminder.model_json_schema(),
    }


def _first_example(examples: list[Json], event_type: str) -> Json:
    return next(e for e in examples if e["event_type"] == event_type)


def asyncapi_document(examples: list[Json], reminders: list[Json]) -> Json:
    schemas = EVENT_ADAPTER.json_schema(ref_template="#/components/schemas/{model}")["$defs"]
    reminder = Reminder.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(reminder.pop("$defs"))
    schemas["Reminder"] = reminder
    messages: Json = {}
    for model in EVENT_MODELS:
        name = model.__name__
        example = _first_example(examples, name)
        messages[name] = {
            "name": name,
            "title": name,
            "summary": (model.__doc__ or name).strip(),
            "contentType": "application/json",
            "headers": MSG_ID_HEADER,
            "payload": {"$ref": f"#/components/schemas/{name}"},
            "examples": [
                {
                    "name": f"lianyun-{name}",
                    "summary": "From contracts/examples/events.jsonl.",
                    "headers": {wire.MSG_ID: example["event_id"]},
                    "payload": example,
                }
            ],
        }
    messages["DeadLetter"] = {
        "name": "DeadLetter",
        "title": "Dead letter",
        "summary": "A message a stage rejected, kept with the reason until it is replayed.",
        "description": "The payload is the rejected message's bytes, unchanged (they may be "
        "malformed JSON). Read, replay or fix them with `cw dlq list | show | replay`.",
        "contentType": "application/octet-stream",
        "headers": {
            "type": "object",
            "required": [
                wire.DLQ_STAGE,
                wire.DLQ_REASON,
                wire.DLQ_FIELD,
                wire.DLQ_REJECTED_AT,
                wire.MSG_ID,
            ],
            "properties": {
                name: {"type": "string", "description": text}
                for name, text in DEAD_LETTER_HEADERS.items()
            },
        },
        "payload": {"description": "The original bytes, as received."},
    }
    messages["Reminder"] = {
        "name": "Reminder",
        "title": "Reminder",
        "summary": "Named people must act on an issue (or read a district's daily digest).",
        "description": "Published by the reminders service once per reminder_id, with "
        "Nats-Msg-Id set to reminder_id; a notification consumer turns it into an alert (a "
        "work-chat robot, SMS, a webhook with Idempotency-Key: reminder_id). Fields that do not "
        "apply are null. title_zh and body_zh are what the bureau reads (Simplified Chinese). "
        f"Schema: schema/Reminder.v{REMINDER_SCHEMA_VERSION}.json.",
        "contentType": "application/json",
        "headers": {
            "type": "object",
            "required": [wire.MSG_ID],
            "properties": {
                wire.MSG_ID: {
                    "type": "string",
                    "format": "uuid",
                    "description": "The reminder's reminder_id: the same reminder computed "
                    "twice (a restart, a rebuild) is stored once.",
                }
            },
        },
        "payload": {"$ref": "#/components/schemas/Reminder"},
        "examples": [
            {
                "name": f"lianyun-{r['kind']}",
                "summary": "From contracts/examples/reminders.jsonl.",
                "headers": {wire.MSG_ID: r["reminder_id"]},
                "payload": r,
            }
            for r in reminders
        ],
    }
    return {
        "asyncapi": "3.1.0",
        "info": {
            "title": "chuangwei 创卫 events",
            "version": f"{SCHEMA_VERSION}.0.0",
            "description": "The events district systems publish about the sanitary-city "
            "re-review campaign (创卫复审): venues, inspections, issues, rectification orders and "
            "rechecks; the reminders derived from them for notification consumers; and the dead "
            "letters of rejected input. Generated from contracts/events.py and "
            "contracts/reminders.py; see contracts/README.md.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "nats": {
                "host": "127.0.0.1:4222",
                "protocol": "nats",
                "description": "A NATS server with JetStream. Stream "
                f"{EVENTS_STREAM} holds {EVENTS_SUBJECTS} (the system of record, never expires); "
                f"{REMINDERS_STREAM} holds {REMINDERS_SUBJECTS}; "
                f"{DEAD_LETTERS_STREAM} holds {DEAD_LETTERS_SUBJECTS}.",
            }
        },
        "channels": {
            "events": {
                "address": EVENT_SUBJECT_ADDRESS,
                "title": "Events",
                "description": f"Every event, in stream {EVENTS_STREAM}. Publish with JetStream "
                "(wait for the PubAck) and set Nats-Msg-Id to event_id. The subject's tokens "
                "repeat the payload's district, venue_id and event_type.",
                "parameters": {
                    "district": {
                        "description": "6-digit administrative code (payload field district).",
                        "examples": ["320703"],
                    },
                    "venue_id": {
                        "description": "The venue, [A-Za-z0-9_-]{1,64} (payload field venue_id).",
                        "examples": ["LY-FM-001"],
                    },
                    "event_type": {
                        "description": "The payload field event_type.",
                        "enum": list(EVENT_TYPES),
                    },
                },
                "messages": {
                    m.__name__: {"$ref": f"#/components/messages/{m.__name__}"}
                    for m in EVENT_MODELS
                },
            },
            "reminders": {
                "address": REMINDER_SUBJECT_ADDRESS,
                "title": "Reminders",
                "description": f"Reminders about one venue's issues, in stream {REMINDERS_STREAM}. "
                "The subject's tokens repeat the payload's district, venue_id and kind. A family "
                "of its own: a reader of events never sees a reminder.",
                "parameters": {
                    "district": {
                        "description": "6-digit administrative code (payload field district).",
                        "examples": ["320703"],
                    },
                    "venue_id": {
                        "description": "The venue (payload field venue_id).",
                        "examples": ["LY-FM-003"],
                    },
                    "kind": {
                        "description": "The payload field kind.",
                        "enum": [k for k in REMINDER_KINDS if k != "digest"],
                    },
                },
                "messages": {"Reminder": {"$ref": "#/components/messages/Reminder"}},
            },
            "reminderDigests": {
                "address": REMINDER_DIGEST_SUBJECT_ADDRESS,
                "title": "Daily digests",
                "description": f"One digest per district and day, in stream {REMINDERS_STREAM}: "
                "reminders of kind digest, whose venue and issue fields are null.",
                "parameters": {
                    "district": {
                        "description": "6-digit administrative code (payload field district).",
                        "examples": ["320703"],
                    }
                },
                "messages": {"Reminder": {"$ref": "#/components/messages/Reminder"}},
            },
            "deadLetters": {
                "address": DEAD_LETTER_SUBJECT_ADDRESS,
                "title": "Dead letters",
                "description": f"Rejected input, in stream {DEAD_LETTERS_STREAM}, kept until an "
                "operator replays (cw dlq replay) or removes it. The intake's have a channel of "
                "their own (intakeDeadLetters).",
                "parameters": {
                    "stage": {
                        "description": "The stage that rejected the message.",
                        "examples": ["projector", "notifier"],
                    }
                },
                "messages": {"DeadLetter": {"$ref": "#/components/messages/DeadLetter"}},
            },
            "intakeDeadLetters": {
                "address": INTAKE_DEAD_LETTER_SUBJECT_ADDRESS,
                "title": "A district's rejected lines",
                "description": f"Lines a district's publisher (cw publish) rejected, in stream "
                f"{DEAD_LETTERS_STREAM}, header Cw-Dlq-Stage intake. The district is the "
                "publisher's (CW_DISTRICT): NATS lets each district's publisher write its own "
                "and no other. A replacement replayed from one stays in that district. What a "
                "letter here says of itself is its writer's word: another Cw-Dlq-Stage, or a "
                "Cw-Dlq-Subject, Cw-Dlq-Stream-Seq, Cw-Dlq-Issue-Venue or Cw-Dlq-Target (headers "
                "only the services write), is shown as a false claim and the letter is never "
                "replayed.",
                "parameters": {
                    "district": {
                        "description": "6-digit administrative code of the publisher; unknown "
                        "when an unrestricted publisher sent a line whose district cannot be "
                        "read.",
                        "examples": ["320703"],
                    }
                },
                "messages": {"DeadLetter": {"$ref": "#/components/messages/DeadLetter"}},
            },
        },
        "operations": {
            "publishEvent": {
                "action": "send",
                "channel": {"$ref": "#/channels/events"},
                "title": "Publish an event",
                "summary": "District systems publish events; `cw publish` does it for a file.",
                "messages": [
                    {"$ref": f"#/channels/events/messages/{m.__name__}"} for m in EVENT_MODELS
                ],
            },
            "receiveEvents": {
                "action": "receive",
                "channel": {"$ref": "#/channels/events"},
                "title": "Read events",
                "summary": "The projector reads every event, in stream order, and builds the "
                f"read model. Phases: {', '.join(PHASES)} (or derived from occurred_at).",
                "messages": [
                    {"$ref": f"#/channels/events/messages/{m.__name__}"} for m in EVENT_MODELS
                ],
            },
            "publishReminder": {
                "action": "send",
                "channel": {"$ref": "#/channels/reminders"},
                "title": "Publish a reminder",
                "summary": "The reminders service publishes each reminder once, when it is due.",
                "messages": [{"$ref": "#/channels/reminders/messages/Reminder"}],
            },
            "publishDigest": {
                "action": "send",
                "channel": {"$ref": "#/channels/reminderDigests"},
                "title": "Publish a daily digest",
                "summary": "The reminders service publishes one digest per district and day.",
                "messages": [{"$ref": "#/channels/reminderDigests/messages/Reminder"}],
            },
            "receiveReminders": {
                "action": "receive",
                "channel": {"$ref": "#/channels/reminders"},
                "title": "Read reminders",
                "summary": "Notification consumers (the notifier, other systems) deliver them.",
                "messages": [{"$ref": "#/channels/reminders/messages/Reminder"}],
            },
            "receiveDigests": {
                "action": "receive",
                "channel": {"$ref": "#/channels/reminderDigests"},
                "title": "Read daily digests",
                "summary": "Notification consumers deliver them to the district's officers.",
                "messages": [{"$ref": "#/channels/reminderDigests/messages/Reminder"}],
            },
            "receiveDeadLetters": {
                "action": "receive",
                "channel": {"$ref": "#/channels/deadLetters"},
                "title": "Read dead letters",
                "summary": "Operators list, show and replay them with `cw dlq`.",
                "messages": [{"$ref": "#/channels/deadLetters/messages/DeadLetter"}],
            },
            "publishIntakeDeadLetter": {
                "action": "send",
                "channel": {"$ref": "#/channels/intakeDeadLetters"},
                "title": "Keep a rejected line",
                "summary": "`cw publish` keeps each line it rejects, under its own district.",
                "messages": [{"$ref": "#/channels/intakeDeadLetters/messages/DeadLetter"}],
            },
            "receiveIntakeDeadLetters": {
                "action": "receive",
                "channel": {"$ref": "#/channels/intakeDeadLetters"},
                "title": "Read a district's rejected lines",
                "summary": "Operators list, show and replay them with `cw dlq` (stage intake).",
                "messages": [{"$ref": "#/channels/intakeDeadLetters/messages/DeadLetter"}],
            },
        },
        "components": {"messages": messages, "schemas": schemas},
    }


def examples_jsonl(examples: list[Json]) -> str:
    return "".join(orjson.dumps(e).decode() + "\n" for e in examples)


def render() -> dict[str, str]:
    """Every generated file, by its path relative to ``contracts/``, with its content."""
    examples = example_events()
    reminders = example_reminders()
    files = {f"{SCHEMA_DIR}/envelope.v{SCHEMA_VERSION}.json": _dump_json(envelope_schema())}
    for model in EVENT_MODELS:
        files[f"{SCHEMA_DIR}/{model.__name__}.v{SCHEMA_VERSION}.json"] = _dump_json(
            event_schema(model)
        )
    files[f"{SCHEMA_DIR}/Reminder.v{REMINDER_SCHEMA_VERSION}.json"] = _dump_json(reminder_schema())
    files["asyncapi.json"] = _dump_json(asyncapi_document(examples, reminders))
    files["examples/events.jsonl"] = examples_jsonl(examples)
    files["examples/reminders.jsonl"] = examples_jsonl(reminders)
    return files


def stale(root: Path = CONTRACTS_DIR, files: dict[str, str] | None = None) -> list[str]:
    """Generated files that differ from ``root``, and schema files that should not be there."""
    files = render() if files is None else files
    out = []
    for rel, text in files.items():
        path = root / rel
        if not path.exists():
            out.append(f"{rel} (missing)")
        elif path.read_text(encoding="utf-8") != text:
            out.append(f"{rel} (out of date)")
    for path in sorted((root / SCHEMA_DIR).glob("*.json")):
        rel = f"{SCHEMA_DIR}/{path.name}"
        if rel not in files:
            out.append(f"{rel} (not generated any more)")
    return out


def write(root: Path = CONTRACTS_DIR) -> list[str]:
    files = render()
    changed = []
    for rel, text in files.items():
        path = root / rel
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            changed.append(rel)
    for path in sorted((root / SCHEMA_DIR).glob("*.json")):
        if f"{SCHEMA_DIR}/{path.name}" not in files:
            path.unlink()
            changed.append(f"{SCHEMA_DIR}/{path.name} (removed)")
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m contracts.generate",
        description="Write the JSON Schema files, the AsyncAPI document and the example events.",
    )
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 listing stale files"
    )
    args = parser.parse_args(argv)
    if args.check:
        out = stale()
        for line in out:
            print(f"stale: contracts/{line}")
        if out:
            print("run: python -m contracts.generate")
            return 1
        print("contracts: generated files are up to date")
        return 0
    for rel in write():
        print(f"wrote contracts/{rel}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
