"""``cw dlq list | show | replay | delete``: read the dead letters, put fixed events back, or let
them go with a recorded reason."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
from rich.console import Console
from rich.table import Table

from contracts import EventRejected
from services.common.campaign import Names, load_campaign
from services.common.cliargs import positive_int
from services.common.connect import NatsAccess
from services.common.deadletters import FILE as FILE_HEADER
from services.common.deadletters import (
    ISSUE_VENUE,
    STAGE,
    STREAM_SEQ,
    SUBJECT,
    TARGET,
    DeadLetter,
    header_text,
)
from services.common.deadletters import TRUNCATED as TRUNCATED_HEADER
from services.common.localtime import shown, zone_label
from services.common.runtime import run
from services.common.settings import Settings
from services.common.streams import DEAD_LETTERS_STREAM
from services.deadletters.adapters.jetstream import DeadLetterStore, EventStream
from services.deadletters.adapters.postgres import ActionLog, Archive
from services.deadletters.bootstrap import Unavailable, jetstream, postgres
from services.deadletters.domain.rules import candidate, claim_problems, identity_problems
from services.deadletters.service import Outcome, delete, replay

SHOW_BYTES = 4096
"""An event is a few hundred bytes; more than this of a payload is noise on a terminal."""


def _say(console: Console, text: str) -> None:
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def origin(letter: DeadLetter) -> str:
    """Where the rejected message came from, in words."""
    if letter.line is not None:
        name = letter.headers.get(FILE_HEADER)
        return f"line {letter.line}" + (f" of {header_text(name)}" if name else "")
    if letter.original_stream_seq is not None:
        return f"{letter.original_subject or 'stream'} seq {letter.original_stream_seq}"
    return letter.original_subject or ""


CLAIMED = {
    STAGE: "stage",
    SUBJECT: "subject",
    STREAM_SEQ: "stream seq",
    ISSUE_VENUE: "issue venue",
    TARGET: "target",
}


def claimed(letter: DeadLetter) -> str:
    """What the letter's headers claim and its subject denies, in words (empty: nothing):
    ``stage projector, subject cw.events.…, but was written to cw.dlq.intake.320703``."""
    if not letter.claims:
        return ""
    what = ", ".join(
        f"{CLAIMED[name]} {header_text(value)}" for name, value in letter.claims.items()
    )
    return f"{what}, but was written to {letter.subject}"


def from_cell(letter: DeadLetter) -> str:
    """Where it came from, and what its headers claim otherwise: a listing's "from"."""
    claims = claimed(letter)
    return "; ".join(part for part in (origin(letter), claims and f"claims {claims}") if part)


def _zone(zone: ZoneInfo | None) -> ZoneInfo:
    return zone if zone is not None else load_campaign().timezone


def rejected_at(letter: DeadLetter, zone: ZoneInfo, *, offset: bool = True) -> str:
    """When it was rejected, on the campaign's clock (``2026-11-25 15:58:12 +08:00``); the header
    as it is when it is not a time (a dead letter written by hand)."""
    try:
        moment = datetime.fromisoformat(letter.rejected_at)
        return shown(moment, zone, seconds=True, offset=offset)
    except ValueError:
        return letter.rejected_at or "-"


async def list_command(
    nats_url: NatsAccess | str,
    *,
    stage: str | None,
    limit: int,
    as_json: bool,
    console: Console,
    zone: ZoneInfo | None = None,
) -> int:
    """The oldest dead letters. On a terminal a table; else (a pipe, a file) one tab-separated
    line each, never wrapped. Times on the clock of ``zone`` (default: the campaign's)."""
    zone = _zone(zone)
    try:
        async with jetstream(nats_url) as js:
            store = DeadLetterStore(js)
            counts = await store.counts()
            letters = await store.list(stage=stage, limit=limit)
    except Unavailable as exc:
        _say(console, str(exc))
        return 2
    if as_json:
        for letter in letters:
            _say(console, orjson.dumps(_summary(letter)).decode())
        return 0
    by_stage = ", ".join(f"{name} {n}" for name, n in sorted(counts.by_stage().items()))
    _say(console, f"{DEAD_LETTERS_STREAM}: {counts.total} dead letters ({by_stage or 'none'})")
    if not letters:
        return 0
    if console.is_terminal:
        table = Table(highlight=False)
        for name in ("seq", "stage", f"rejected at ({zone_label(zone)})"):
            table.add_column(name, no_wrap=True)
        table.add_column("from", overflow="fold")
        table.add_column("reason (field: why)", ratio=1, overflow="fold")
        for letter in letters:
            table.add_row(
                str(letter.seq),
                letter.stage,
                rejected_at(letter, zone, offset=False),
                from_cell(letter),
                letter.reason,
            )
        console.print(table)
    else:
        lines = ["\t".join(("seq", "stage", "rejected at", "from", "reason (field: why)"))]
        for letter in letters:
            cells = (str(letter.seq), letter.stage, rejected_at(letter, zone),
                     from_cell(letter), letter.reason)  # fmt: skip
            lines.append("\t".join(" ".join(c.split()) for c in cells))
        # Past rich: it would turn the tabs into spaces.
        console.file.write("".join(f"{line}\n" for line in lines))
    shown = len(letters)
    wanted = counts.of_stage(stage) if stage else counts.total
    if shown < wanted:
        _say(console, f"showing the oldest {shown} of {wanted}; use --limit to see more")
    return 0


def _summary(letter: DeadLetter) -> dict[str, object]:
    return {
        "seq": letter.seq,
        "subject": letter.subject,
        "stage": letter.stage,
        "rejected_at": letter.rejected_at,
        "from": from_cell(letter),
        "line": letter.line,
        "original_subject": letter.original_subject,
        "original_stream_seq": letter.original_stream_seq,
        "kind": letter.kind,
        "field": letter.field,
        "reason": letter.reason,
        "claims": {name: header_text(value) for name, value in letter.claims.items()},
    }


async def show_command(
    nats_url: NatsAccess | str,
    seq: int,
    *,
    console: Console,
    zone: ZoneInfo | None = None,
    names: Names | None = None,
) -> int:
    try:
        async with jetstream(nats_url) as js:
            letter = await DeadLetterStore(js).get(seq)
    except Unavailable as exc:
        _say(console, str(exc))
        return 2
    if letter is None:
        _say(console, f"no dead letter {seq} in {DEAD_LETTERS_STREAM} (replayed or removed?)")
        return 1
    rows = [
        ("dead letter", f"{letter.seq} on {letter.subject}"),
        ("stage", letter.stage),
        *([("claims", claimed(letter))] if letter.claims else []),
        ("rejected at", f"{rejected_at(letter, _zone(zone))} ({zone_label(_zone(zone))})"),
        ("from", origin(letter)),
        ("field", letter.field),
        ("reason", letter.reason),
        ("now", _now(letter, names)),
    ]
    for name, value in rows:
        _say(console, f"{name + ':':<13}{value}")
    _say(console, "headers:")
    for name, value in sorted(letter.headers.items()):
        _say(console, f"  {name}: {header_text(value)}")
    cut = letter.headers.get(TRUNCATED_HEADER)
    note = f"; the first of {cut} bytes, the rest was not kept" if cut else ""
    _say(console, f"payload ({len(letter.payload)} bytes{note}):")
    shown = letter.payload[:SHOW_BYTES]
    _say(console, _readable(shown))
    if len(shown) < len(letter.payload):
        _say(console, f"... ({len(letter.payload) - len(shown)} more bytes not shown)")
    return 0


def _now(letter: DeadLetter, names: Names | None = None) -> str:
    """What ``cw dlq replay`` would do with it today, and how to go on."""
    seq = letter.seq
    claims = claim_problems(letter)
    if claims:
        why = "; ".join(str(c) for c in claims)
        return f"not replayable: {why}; remove it with cw dlq delete {seq} --reason TEXT"
    try:
        chosen = candidate(letter)
    except EventRejected as exc:
        # The contract may have changed since the rejection: then say what is wrong today.
        why = "" if exc.reason == letter.reason else f" ({exc.reason})"
        return f"still invalid{why}; fix it, then: cw dlq replay {seq} --file FIXED.json"
    problems = identity_problems(letter, chosen.event)
    if problems:
        why = "; ".join(str(p) for p in problems)
        return (
            f"valid, but not a replacement: {why}; fix it, then: "
            f"cw dlq replay {seq} --file FIXED.json"
        )
    if names is not None and not names.knows_district(chosen.event.district):
        return (
            f"valid, but district {chosen.event.district} is not one of the campaign's "
            "districts: add its line to the campaign file's districts, restart the "
            f"projector and the reminders service, then: cw dlq replay {seq}"
        )
    return f"valid now: cw dlq replay {seq} publishes it to {chosen.event.subject}"


def _readable(payload: bytes) -> str:
    try:
        return orjson.dumps(orjson.loads(payload), option=orjson.OPT_INDENT_2).decode()
    except (orjson.JSONDecodeError, orjson.JSONEncodeError):
        # JSONEncodeError: nested deeper than orjson writes (255), though not than it reads.
        return payload.decode("utf-8", errors="replace")


async def replay_command(
    nats_url: NatsAccess | str,
    database_url: str,
    seqs: Sequence[int],
    *,
    fixed: bytes | None,
    force: bool = False,
    console: Console,
    zone: ZoneInfo | None = None,
    names: Names | None = None,
) -> int:
    """Replay each dead letter; ``fixed`` replaces the payload (of one dead letter); ``names``:
    the campaign's districts, which a replayed event's must be one of. Times on the clock of
    ``zone`` (default: the campaign's)."""
    zone = _zone(zone)
    failed = 0
    try:
        async with jetstream(nats_url) as js, postgres(database_url) as conn:
            store, events = DeadLetterStore(js), EventStream(js)
            archive, actions = Archive(conn), ActionLog(conn)
            await store.counts()  # says "run cw init" when the stream is missing
            for seq in seqs:
                outcome = await replay(
                    seq,
                    store,
                    events,
                    archive,
                    actions,
                    fixed=fixed,
                    force=force,
                    zone=zone,
                    names=names,
                )
                failed += _report(console, outcome)
    except Unavailable as exc:
        _say(console, str(exc))
        return 2
    return 1 if failed else 0


async def delete_command(
    nats_url: NatsAccess | str,
    database_url: str,
    seqs: Sequence[int],
    *,
    reason: str,
    console: Console,
    zone: ZoneInfo | None = None,
) -> int:
    """Record each dead letter as deleted with ``reason``, then remove it. Times on the clock of
    ``zone`` (default: the campaign's)."""
    zone = _zone(zone)
    failed = 0
    try:
        async with jetstream(nats_url) as js, postgres(database_url) as conn:
            store = DeadLetterStore(js)
            await store.counts()
            for seq in seqs:
                outcome = await delete(seq, store, ActionLog(conn), reason=reason, zone=zone)
                failed += _report(console, outcome)
    except Unavailable as exc:
        _say(console, str(exc))
        return 2
    return 1 if failed else 0


def _report(console: Console, outcome: Outcome) -> bool:
    """Print the outcome; True when it failed."""
    _say(console, f"dead letter {outcome.seq}: {outcome.text}")
    return not outcome.done


def _console() -> Console:
    return Console(soft_wrap=True)


def _list(args: argparse.Namespace) -> int:
    settings = Settings()
    return run(
        list_command(
            NatsAccess.from_settings(settings),
            stage=args.stage,
            limit=args.limit,
            as_json=args.json,
            console=_console(),
            zone=load_campaign(settings.campaign_file).timezone,
        )
    )


def _show(args: argparse.Namespace) -> int:
    settings = Settings()
    campaign = load_campaign(settings.campaign_file)
    return run(
        show_command(
            NatsAccess.from_settings(settings),
            args.seq,
            console=_console(),
            zone=campaign.timezone,
            names=campaign.names,
        )
    )


def _replay(args: argparse.Namespace) -> int:
    console = _console()
    fixed: bytes | None = None
    if args.file is not None:
        if len(args.seq) != 1:
            _say(console, "--file replaces the payload of one dead letter: give exactly one SEQ")
            return 2
        try:
            fixed = args.file.read_bytes()
        except OSError as exc:
            _say(console, f"cannot read {args.file}: {exc.strerror or exc}")
            return 2
    settings = Settings()
    campaign = load_campaign(settings.campaign_file)
    return run(
        replay_command(
            NatsAccess.from_settings(settings),
            settings.database_url,
            args.seq,
            fixed=fixed,
            force=args.force,
            console=console,
            zone=campaign.timezone,
            names=campaign.names,
        )
    )


def _delete(args: argparse.Namespace) -> int:
    settings = Settings()
    return run(
        delete_command(
            NatsAccess.from_settings(settings),
            settings.database_url,
            args.seq,
            reason=args.reason,
            console=_console(),
            zone=load_campaign(settings.campaign_file).timezone,
        )
    )


def _reason(text: str) -> str:
    reason = " ".join(text.split())
    if not reason:
        raise argparse.ArgumentTypeError("say why the dead letter is deleted")
    return reason


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dlq = sub.add_parser(
        "dlq",
        help="list, show, replay and delete dead letters (rejected input)",
        description=f"Rejected input waits in {DEAD_LETTERS_STREAM} with the reason it was "
        "rejected. Look at it, fix it, and put it back into CW_EVENTS, or delete it with a "
        "reason. Every removal is recorded in cw.dead_letter_actions (PostgreSQL, "
        "CW_DATABASE_URL).",
    )
    commands = dlq.add_subparsers(
        dest="dlq_command",
        required=True,
        metavar="COMMAND",
        title="commands",
        help="cw dlq COMMAND --help says more",
    )

    p = commands.add_parser(
        "list",
        help="the oldest dead letters, with stage and reason",
        description=f"How many dead letters {DEAD_LETTERS_STREAM} holds, per stage, then the "
        "oldest ones: sequence, stage, when and where from they were rejected, and why.",
        epilog=f"exit status: 0 listed; 2 NATS or {DEAD_LETTERS_STREAM} could not be reached",
    )
    p.add_argument("--stage", metavar="S", help="only this stage (intake, projector, ...)")
    p.add_argument(
        "--limit", type=positive_int, default=50, metavar="N", help="show at most N (default: 50)"
    )
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(handler=_list)

    p = commands.add_parser(
        "show",
        help="reason, headers and the original payload of one",
        description="One dead letter in full: why it was rejected, whether it is valid now "
        "(and how to replay it), its headers and the original payload.",
        epilog=f"exit status: 0 shown; 1 no such dead letter; 2 NATS or {DEAD_LETTERS_STREAM} "
        "could not be reached",
    )
    p.add_argument("seq", type=positive_int, metavar="SEQ", help="its sequence, from cw dlq list")
    p.set_defaults(handler=_show)

    p = commands.add_parser(
        "replay",
        help="validate and publish into CW_EVENTS, then remove from the dead letters",
        description="Validate the original payload (or the fixed one from --file) with the "
        "event contract, check that it replaces the dead letter's event (same event_id; the "
        "district and venue of the subject it came on, or the issue's venue for a "
        "venue_mismatch; for an intake letter, the district of cw.dlq.intake.<district>) in a "
        "district the campaign file lists, and publish it to its subject in CW_EVENTS. A letter "
        "whose headers claim another stage than its subject's, or a stream message on an intake "
        "letter, is kept. The dead letter is "
        "removed only when the event is in CW_EVENTS on its subject and the projector will "
        "project it (or already did); the replay is recorded in cw.dead_letter_actions first. "
        "One that cannot be put back is kept, and the reason printed. Running it again is "
        "harmless.",
        epilog="exit status: 0 every one was replayed; 1 some were kept (or did not exist); 2 "
        "NATS or PostgreSQL could not be reached",
    )
    p.add_argument(
        "seq", type=positive_int, nargs="+", metavar="SEQ", help="dead letters, from cw dlq list"
    )
    p.add_argument(
        "--file",
        type=Path,
        metavar="FIXED.json",
        help="publish this fixed event instead of the original payload (one SEQ only)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="publish even when the event_id, district or venue differ from the dead letter's "
        "event (it must still be valid); never an intake letter's event into another district",
    )
    p.set_defaults(handler=_replay)

    p = commands.add_parser(
        "delete",
        help="remove dead letters without replaying them, recording why",
        description="Record each dead letter as deleted, with the reason, in "
        "cw.dead_letter_actions, then remove it from CW_DEAD_LETTERS. For input that cannot or "
        "should not be put back (malformed JSON, a test message). cw audit then counts the "
        "rejected message as deleted.",
        epilog="exit status: 0 every one is gone; 1 some did not exist; 2 NATS or PostgreSQL "
        "could not be reached",
    )
    p.add_argument(
        "seq", type=positive_int, nargs="+", metavar="SEQ", help="dead letters, from cw dlq list"
    )
    p.add_argument(
        "--reason",
        type=_reason,
        required=True,
        metavar="TEXT",
        help="why they are deleted, kept in cw.dead_letter_actions (required)",
    )
    p.set_defaults(handler=_delete)
