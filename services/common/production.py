"""Production mode (``CW_ENV=production``): what a command or service refuses to start with.

A pure rule over the settings, so that every command asks it the same way (``services.cli``)
and a test can ask it without servers. Each problem is one line that names the setting and
never shows the secret itself.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from services.common.settings import Settings

DEFAULT_SECRETS = frozenset(
    {
        "",
        "postgres",
        "changeme",
        "change-me",
        "change_me",
        "password",
        "passw0rd",
        "secret",
        "admin",
        "root",
        "test",
        "example",
        "nats",
        "chuangwei",
        "cw",
        "cw_reader",
        "cw_service",
        "123456",
        "12345678",
    }
)
"""Secrets anyone would try first: the images' and tutorials' defaults, and the names of this
system and its roles. ``cw dev`` makes its own passwords at random, and ``docker-compose.yml`` and
``deploy/*.example*`` ship none (every secret there is ``${VAR:?}`` or a variable's name)."""


def _is_default(secret: str) -> bool:
    return secret.strip().lower() in DEFAULT_SECRETS


def _nats_problems(settings: Settings) -> list[str]:
    problems: list[str] = []
    has_credentials = settings.nats_creds is not None
    for part in settings.nats_url.split(","):
        try:
            parts = urlsplit(part.strip())
            user, password = parts.username, parts.password
        except ValueError:
            problems.append("CW_NATS_URL cannot be read as a URL")
            continue
        if user is None and password is None:
            continue
        has_credentials = True
        # A NATS URL's lone user part is a token.
        secret = unquote(password if password is not None else user or "")
        if _is_default(secret):
            what = "password" if password is not None else "token"
            problems.append(f"CW_NATS_URL's {what} is a default one: choose another")
    if not has_credentials:
        problems.append(
            "NATS has no credentials: set CW_NATS_CREDS, or a user and password in CW_NATS_URL"
        )
    return problems


def _database_problems(setting: str, url: str) -> list[str]:
    try:
        password = urlsplit(url).password
    except ValueError:
        return [f"{setting} cannot be read as a URL"]
    if password is None:
        return [f"{setting} has no password"]
    if _is_default(unquote(password)):
        return [f"{setting}'s password is a default one: choose another"]
    return []


def production_problems(settings: Settings) -> list[str]:
    """Why ``settings`` may not run in production, one line each; empty: they may (or the
    environment is not production)."""
    if settings.env != "production":
        return []
    problems = _nats_problems(settings)
    urls = {
        "CW_DATABASE_URL": settings.database_url,
        "CW_READER_DATABASE_URL": settings.reader_database_url,
        "CW_ADMIN_DATABASE_URL": settings.admin_database_url,
    }
    for setting, url in urls.items():
        if url is not None:
            problems.extend(_database_problems(setting, url))
    reader_password = settings.reader_password
    if reader_password is not None and _is_default(reader_password.get_secret_value()):
        problems.append("CW_READER_PASSWORD is a default one: choose another")
    return problems
