"""The read-only role on ``cw dev``'s stack, so that ``cw report`` works there as it does in
production: a password, the reader's URL for what ``cw dev`` runs, and lines to paste that never
show the password.

On a database ``cw dev`` found or started, the password is ``CW_READER_PASSWORD`` when set, else
a development one kept in the stack's data folder (``.cw/reader-password``, mode 0600: the same
across restarts, so a pasted line keeps working). On a database given by ``CW_DATABASE_URL``
(not ``cw dev``'s own), a role is made only with ``CW_READER_PASSWORD``: a development password
has no place there.
"""

from __future__ import annotations

import os
import secrets
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from services.common.connect import mask_url

PASSWORD_FILE = "reader-password"
SERVICE_PASSWORD_FILE = "service-password"
SERVICE_ROLE = "cw_service"
"""The role ``cw dev`` runs ``cw init`` and the services as, on a database it found or started:
the least-privileged shape of production (``cw db setup``), not the superuser."""


@dataclass(frozen=True, slots=True)
class ReaderAccess:
    role: str
    password: str
    url: str
    """The read-only role's URL, with its password: for processes, never printed."""
    password_shell: str
    """How a pasted line gets the password: ``$(cat …/reader-password)`` or
    ``$CW_READER_PASSWORD``."""

    @property
    def env(self) -> dict[str, str]:
        return {"CW_READER_PASSWORD": self.password, "CW_READER_DATABASE_URL": self.url}

    @property
    def masked(self) -> str:
        return mask_url(self.url)

    def url_shell(self) -> str:
        """The URL with the password as a shell expansion, in double quotes: pasteable."""
        parts = urlsplit(self.url)
        host = parts.netloc.rpartition("@")[2]
        netloc = f"{quote(self.role, safe='')}:{self.password_shell}@{host}"
        return '"' + urlunsplit(parts._replace(netloc=netloc)) + '"'


def with_user(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


def _dev_password(data_dir: Path, name: str = PASSWORD_FILE) -> str:
    path = data_dir / name
    if path.is_file():
        return path.read_text(encoding="utf-8").strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(18)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(password + "\n")
    return password


def reader_access(
    environ: Mapping[str, str],
    database_url: str,
    *,
    own_database: bool,
    data_dir: Path,
    role: str,
) -> ReaderAccess | None:
    """The read-only role's access on the stack's database; ``None``: none is made (a database
    given by ``CW_DATABASE_URL`` and no ``CW_READER_PASSWORD``)."""
    given = environ.get("CW_READER_PASSWORD")
    if given:
        password, shell = given, "$CW_READER_PASSWORD"
    elif own_database:
        password = _dev_password(data_dir)
        shell = "$(cat " + shlex.quote(str(data_dir / PASSWORD_FILE)) + ")"
    else:
        return None
    return ReaderAccess(role, password, with_user(database_url, role, password), shell)


def service_url(database_url: str, *, own_database: bool, data_dir: Path) -> str | None:
    """The services' URL on the stack's database: ``cw_service`` with a development password
    kept in ``.cw/service-password`` (mode 0600); ``None`` on a database given by
    ``CW_DATABASE_URL``, whose user is the operator's choice."""
    if not own_database:
        return None
    return with_user(database_url, SERVICE_ROLE, _dev_password(data_dir, SERVICE_PASSWORD_FILE))
