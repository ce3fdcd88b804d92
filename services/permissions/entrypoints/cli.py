"""``cw nats publisher DISTRICT``: a new district's publisher, as an NKey user.

The server's configuration holds only the public key, so it keeps no secret of the district's;
the seed goes to a file only its owner can read, to be handed to that district's system.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from pathlib import Path

from contracts.events import DISTRICT_CODE
from services.permissions.adapters.credentials import new_nkey, write_secret
from services.permissions.domain.users import inbox_prefix, nkey_user, publisher

USERS_FILE = "deploy/nats-users.conf"


def publisher_entry(district: str, seed_file: Path) -> tuple[str, list[str]]:
    """Make the district's NKey and write its seed to ``seed_file`` (0600; an existing file is
    ``FileExistsError``). Returns the server's ``users`` entry (the public key and the
    permissions) and the lines to print: the entry, with comments saying what to do."""
    key = new_nkey()
    write_secret(seed_file, key.seed)
    entry = nkey_user(key.public_key, publisher(district))
    settings = " ".join([
        "CW_NATS_URL=nats://<the bureau's NATS>:4222",
        f"CW_NATS_CREDS={shlex.quote(str(seed_file))}",
        f"CW_NATS_INBOX_PREFIX={inbox_prefix(district)}",
        f"CW_DISTRICT={district}",
    ])  # fmt: skip
    notes = [
        f"# district {district}'s publisher: add the line below inside `users: [ … ]` of "
        f"{USERS_FILE}, then reload nats-server (docker compose kill -s HUP nats).",
        entry,
        f"# Its NKey seed is in {seed_file} (mode 0600): whoever holds it publishes as district "
        f"{district}; hand it to that district's system only. It publishes with",
        f"#   {settings} cw publish EVENTS.jsonl",
    ]
    return entry, notes


def _district(text: str) -> str:
    if not re.fullmatch(DISTRICT_CODE, text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a 6-digit district code")
    return text


def _publisher(args: argparse.Namespace) -> int:
    seed_file: Path = args.seed_file or Path(f"nats-publisher-{args.district}.nk")
    try:
        _, notes = publisher_entry(args.district, seed_file)
    except FileExistsError:
        print(f"{seed_file} exists: a credential is never replaced; remove it or choose another "
              "--seed-file", file=sys.stderr)  # fmt: skip
        return 1
    except OSError as exc:
        print(f"cannot write {seed_file}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print("\n".join(notes))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    nats_parser = sub.add_parser(
        "nats",
        help="the users of the NATS server (who may do what: README)",
        description="The users of the NATS server and their permissions (README, 'Who may do "
        "what').",
    )
    commands = nats_parser.add_subparsers(
        dest="nats_command", required=True, metavar="COMMAND", help="publisher"
    )
    p = commands.add_parser(
        "publisher",
        help="a new district's publisher: its users entry and its NKey seed file",
        description="Make an NKey user that may publish only the district's events "
        "(cw.events.<district>.>) and its own rejected lines (cw.dlq.intake.<district>), and "
        "read only its own replies (_INBOX_<district>.>). Prints the entry to add to the "
        f"server's users ({USERS_FILE}) and how the district publishes; writes the seed, its "
        "secret, to a file only its owner can read. The server keeps no secret of it.",
        epilog="exit status: 0 done; 1 the seed file exists or cannot be written",
    )
    p.add_argument("district", type=_district, help="the 6-digit district code, e.g. 320703")
    p.add_argument(
        "--seed-file",
        type=Path,
        default=None,
        metavar="FILE",
        help="where the NKey seed goes (default: nats-publisher-<district>.nk here); never "
        "overwritten",
    )
    p.set_defaults(handler=_publisher)
