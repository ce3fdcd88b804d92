"""Who may do what on NATS: each user's permissions, as nats-server enforces them. Pure.

The subjects were found by running every command and service against a nats-server that
traces each client (``-V``) and reading what each one published and subscribed to; the tests
in ``tests/integration/test_nats_permissions.py`` run them again with exactly these
permissions. Everything not allowed is refused: an allow list is also a deny list.

- **A district's publisher** may publish its events (``cw.events.<district>.>``) and its own
  rejected lines (``cw.dlq.intake.<district>``), and subscribe to its own reply inbox
  (``_INBOX_<district>.>``), where the server's acknowledgements come back. It may not call
  the JetStream API at all: not even stream info, whose subject counts would name every
  district's venues. With the default ``_INBOX.>`` it could read every reply in the account,
  the projector's deliveries and the operator's ``cw dlq show`` included.
- **A service** (projector, reminders, notifier) reads its stream through its own durable
  consumer (create, info, delete, next, ack), publishes only what it produces, and has an
  inbox of its own (``_INBOX_<service>``). The projector also creates short-lived consumers of
  its own for the audit (server-named, so its consumer rights on ``CW_EVENTS`` and
  ``CW_DEAD_LETTERS`` are on any name): that is harmless here because every consumer of this
  system is recreated at its database checkpoint whenever it is missing.
- **The operator** (``cw init``, ``cw dlq``, ``cw audit``, ``cw rebuild``, ``cw streams``,
  ``cw publish`` of any district) may use the whole JetStream API, snapshots and restores
  (``$JS.SNAPSHOT.ACK.>``, ``$JS.SNAPSHOT.RESTORE.>``) and ``cw.>``.

No user may create, change, purge or delete a stream, or delete a message, except the operator.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from contracts.wire import (
    DEAD_LETTERS_STREAM,
    EVENTS_STREAM,
    REMINDERS_STREAM,
    REMINDERS_SUBJECTS,
    dead_letter_subject,
    intake_dead_letter_subject,
)

OPERATOR = "operator"
PROJECTOR = "projector"
REMINDERS = "reminders"
NOTIFIER = "notifier"
SERVICES = (PROJECTOR, REMINDERS, NOTIFIER)

JS_API = "$JS.API"
ACCOUNT = "CW"
"""The one account every user is in: the streams are its JetStream."""


@dataclass(frozen=True, slots=True)
class Permissions:
    """What a user may publish to and subscribe to; the rest is refused."""

    publish: tuple[str, ...]
    subscribe: tuple[str, ...]

    def config(self) -> dict[str, dict[str, list[str]]]:
        """As nats-server's ``permissions`` block."""
        return {
            "publish": {"allow": list(self.publish)},
            "subscribe": {"allow": list(self.subscribe)},
        }

    def render(self) -> str:
        """As nats-server configuration text (JSON is valid there)."""
        return json.dumps(self.config())


def inbox_prefix(who: str) -> str:
    """The reply-inbox prefix of ``who`` (a district or a service): ``CW_NATS_INBOX_PREFIX``."""
    return f"_INBOX_{who}"


def _inbox(who: str) -> str:
    return f"{inbox_prefix(who)}.>"


def _consumer(stream: str, name: str) -> list[str]:
    """What a durable pull consumer needs: create it (nats-py adds the filter subject's tokens
    to the subject when it has one), read its info, delete it, pull from it and acknowledge."""
    api = f"{JS_API}.CONSUMER"
    return [
        f"{api}.CREATE.{stream}.{name}",
        f"{api}.CREATE.{stream}.{name}.>",
        f"{api}.INFO.{stream}.{name}",
        f"{api}.DELETE.{stream}.{name}",
        f"{api}.MSG.NEXT.{stream}.{name}",
        f"$JS.ACK.{stream}.{name}.>",
    ]


def _any_consumer(stream: str) -> list[str]:
    """Server-named consumers of ``stream``: create, read, delete, pull (no acks)."""
    api = f"{JS_API}.CONSUMER"
    return [
        f"{api}.CREATE.{stream}",
        f"{api}.INFO.{stream}.*",
        f"{api}.DELETE.{stream}.*",
        f"{api}.MSG.NEXT.{stream}.*",
    ]


def _stream_reads(stream: str) -> list[str]:
    """A stream's info and one message by sequence: how far it goes, how old the oldest
    waiting message is (health)."""
    return [f"{JS_API}.STREAM.INFO.{stream}", f"{JS_API}.STREAM.MSG.GET.{stream}"]


def _unique(subjects: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(subjects))


def publisher(district: str) -> Permissions:
    """A district's publisher: its events and its rejected lines, acknowledged on its inbox."""
    return Permissions(
        publish=(f"cw.events.{district}.>", intake_dead_letter_subject(district)),
        subscribe=(_inbox(district),),
    )


def projector(durables: Sequence[str] = (PROJECTOR,)) -> Permissions:
    """The projector: every event through its durable(s) (one per partition), its audits, its
    dead letters. ``durables``: ``CW_PROJECTOR_DURABLE`` of each projector."""
    publish = [
        *_stream_reads(EVENTS_STREAM),
        *_stream_reads(DEAD_LETTERS_STREAM),
        *_any_consumer(EVENTS_STREAM),
        *_any_consumer(DEAD_LETTERS_STREAM),
    ]
    for durable in durables:
        publish += _consumer(EVENTS_STREAM, durable)
    publish.append(dead_letter_subject(PROJECTOR))
    return Permissions(_unique(publish), (_inbox(PROJECTOR),))


def reminders(durable: str = REMINDERS) -> Permissions:
    """The reminders service: every event through its durable; the reminders it publishes. It
    writes no dead letters (those of ``CW_EVENTS`` are the projector's)."""
    publish = [*_stream_reads(EVENTS_STREAM), *_consumer(EVENTS_STREAM, durable)]
    publish.append(REMINDERS_SUBJECTS)
    return Permissions(_unique(publish), (_inbox(REMINDERS),))


def notifier(durable: str = NOTIFIER) -> Permissions:
    """The notifier: every reminder through its durable; what targets refused, as dead
    letters."""
    publish = [*_stream_reads(REMINDERS_STREAM), *_consumer(REMINDERS_STREAM, durable)]
    publish.append(dead_letter_subject(NOTIFIER))
    return Permissions(_unique(publish), (_inbox(NOTIFIER),))


SNAPSHOT_ACKS = "$JS.SNAPSHOT.ACK.>"
"""Where ``cw streams backup`` acknowledges each chunk of a stream's snapshot."""
RESTORE_UPLOADS = "$JS.SNAPSHOT.RESTORE.>"
"""Where ``cw streams restore`` uploads a snapshot's chunks."""


def operator() -> Permissions:
    """The operator: the whole JetStream API, snapshots and restores of streams, and every
    subject of the system."""
    return Permissions(
        (f"{JS_API}.>", "$JS.ACK.>", SNAPSHOT_ACKS, RESTORE_UPLOADS, "cw.>"), ("_INBOX.>",)
    )


def service_permissions(
    service: str,
    *,
    projector_durables: Sequence[str] = (PROJECTOR,),
    reminders_durable: str = REMINDERS,
    notifier_durable: str = NOTIFIER,
) -> Permissions:
    if service == PROJECTOR:
        return projector(projector_durables)
    if service == REMINDERS:
        return reminders(reminders_durable)
    if service == NOTIFIER:
        return notifier(notifier_durable)
    raise ValueError(f"no such service: {service}")


def password_user(name: str, password: str, permissions: str) -> str:
    """One entry of a ``users`` list. ``password`` and ``permissions`` are configuration values:
    a quoted string or a ``$VARIABLE`` (from the environment, or defined in the file)."""
    return f"{{user: {json.dumps(name)}, password: {password}, permissions: {permissions}}}"


def nkey_user(public_key: str, permissions: Permissions) -> str:
    """One entry of a ``users`` list for an NKey user: the server holds no secret of it."""
    return f"{{nkey: {json.dumps(public_key)}, permissions: {permissions.render()}}}"


def quoted(value: str) -> str:
    return json.dumps(value)


def server_config(users: Sequence[str], *, header: str = "") -> str:
    """A nats-server configuration whose only clients are ``users`` (entries of a ``users``
    list), all in the one account with JetStream; no anonymous access (no ``no_auth_user``).
    Ports, address and store come from the command line."""
    lines = [header.rstrip("\n")] if header else []
    lines += [
        "# Well above the projector's CW_PROJECTOR_PULL_BYTES (16 MiB): see deploy/nats.conf.",
        "max_pending: 64MB",
        "max_payload: 1MB",
        "accounts {",
        f"  {ACCOUNT}: {{",
        "    jetstream: enabled",
        "    users: [",
        *(f"      {user}" for user in users),
        "    ]",
        "  }",
        "}",
    ]
    return "\n".join(lines) + "\n"


def password_variable(user: str) -> str:
    """The environment variable that holds ``user``'s password in ``deploy/nats-users.conf``
    (nats-server reads ``$NAME`` from its environment; docker-compose requires it)."""
    return f"CW_NATS_{user.upper()}_PASSWORD"


def deploy_users() -> list[str]:
    """The lines of ``deploy/nats-users.conf`` that come from here: one permissions variable
    per role, and the operator and services, their passwords from the environment. A unit test
    finds each in the shipped file; district publishers are added below them by hand."""
    roles = {OPERATOR: operator(), **{s: service_permissions(s) for s in SERVICES}}
    lines = [f"{role.upper()}_PERMISSIONS = {p.render()}" for role, p in roles.items()]
    lines.append("users: [")
    lines += [
        "  " + password_user(role, f"${password_variable(role)}", f"${role.upper()}_PERMISSIONS")
        for role in roles
    ]
    return lines
