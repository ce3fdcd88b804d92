"""``cw dev --secure``: its own nats-server where each user may do only what it needs
(:mod:`services.permissions.domain.users`), and no one gets in without a password.

The configuration and one password per user are written into the stack's data folder
(``.cw/nats-auth/``, mode 0700, the files 0600). The passwords are kept across restarts, so a
pasted line keeps working; the configuration is written anew at each start, so it follows the
durables in the settings.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from services.devstack.reader import with_user
from services.permissions.adapters.credentials import kept_password
from services.permissions.domain import users as perm

FOLDER = "nats-auth"
CONFIG = "nats.conf"
EXAMPLES_DISTRICT = "320703"
"""The district of ``contracts/examples/events.jsonl``: the one publisher ``cw dev`` makes."""

PUBLISHER = "publisher"


@dataclass(frozen=True, slots=True)
class NatsUser:
    name: str
    password: str = field(repr=False)
    """Never shown, not even in a test's failure report."""
    password_file: Path
    inbox_prefix: str
    permissions: perm.Permissions
    district: str | None = None


@dataclass(frozen=True, slots=True)
class SecureNats:
    """The secured server's configuration and its users, by role (``operator``, each service,
    ``publisher``)."""

    config: Path
    users: dict[str, NatsUser]

    def user(self, role: str) -> NatsUser:
        return self.users[role]

    def url(self, server_url: str, role: str) -> str:
        """``server_url`` as ``role``: with its password, for processes; never printed."""
        user = self.users[role]
        return with_user(server_url, user.name, user.password)

    def env(self, server_url: str, role: str) -> dict[str, str]:
        """The ``CW_*`` settings of a process that is ``role`` on NATS."""
        user = self.users[role]
        env = {"CW_NATS_URL": self.url(server_url, role), "CW_NATS_INBOX_PREFIX": user.inbox_prefix}
        if user.district is not None:
            env["CW_DISTRICT"] = user.district
        return env

    def shell(self, server_url: str, role: str) -> str:
        """The same settings as a line to paste: the password as ``$(cat …)``, never itself."""
        user = self.users[role]
        parts = urlsplit(server_url)
        host = parts.netloc.rpartition("@")[2]
        secret = "$(cat " + shlex.quote(str(user.password_file)) + ")"
        url = urlunsplit(parts._replace(netloc=f"{quote(user.name, safe='')}:{secret}@{host}"))
        words = [f'CW_NATS_URL="{url}"']
        if user.inbox_prefix != "_INBOX":
            words.append(f"CW_NATS_INBOX_PREFIX={user.inbox_prefix}")
        if user.district is not None:
            words.append(f"CW_DISTRICT={user.district}")
        return " ".join(words)


def secure_nats(
    data_dir: Path,
    *,
    district: str = EXAMPLES_DISTRICT,
    projector_durables: Sequence[str] = (perm.PROJECTOR,),
    reminders_durable: str = perm.REMINDERS,
    notifier_durable: str = perm.NOTIFIER,
) -> SecureNats:
    """Write the configuration (and the passwords, once) into ``data_dir/nats-auth``."""
    folder = data_dir / FOLDER
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)

    def made(name: str, permissions: perm.Permissions, inbox: str, **kw: str) -> NatsUser:
        path = folder / f"{name}.password"
        return NatsUser(name, kept_password(path), path, inbox, permissions, **kw)

    users = {perm.OPERATOR: made(perm.OPERATOR, perm.operator(), "_INBOX")}
    for service in perm.SERVICES:
        permissions = perm.service_permissions(
            service,
            projector_durables=projector_durables,
            reminders_durable=reminders_durable,
            notifier_durable=notifier_durable,
        )
        users[service] = made(service, permissions, perm.inbox_prefix(service))
    users[PUBLISHER] = made(
        f"publisher-{district}",
        perm.publisher(district),
        perm.inbox_prefix(district),
        district=district,
    )
    entries = [
        perm.password_user(u.name, perm.quoted(u.password), u.permissions.render())
        for u in users.values()
    ]
    config = folder / CONFIG
    scratch = folder / f"{CONFIG}.{os.getpid()}"
    scratch.unlink(missing_ok=True)
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    header = (
        "# Written by `cw dev --secure` at each start; the passwords are kept beside it.\n"
        "# Each user may do only what it needs: services/permissions/domain/users.py."
    )
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(perm.server_config(entries, header=header))
    scratch.replace(config)
    return SecureNats(config, users)
