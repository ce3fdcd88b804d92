"""Production mode: the rule over the settings, without servers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import SecretStr

from services.common.production import DEFAULT_SECRETS, production_problems
from services.common.settings import Settings

pytestmark = pytest.mark.unit

FIT = {
    "env": "production",
    "nats_url": "nats://projector:Xk2q9-long-secret@nats:4222",
    "database_url": "postgresql://cw_service:Vq8-long-secret@postgres:5432/chuangwei",
}


def _problems(**changes: object) -> list[str]:
    return production_problems(Settings.model_validate({**FIT, **changes}))


def test_fit_settings_pass() -> None:
    assert _problems() == []
    assert _problems(nats_url="nats://nats:4222", nats_creds=Path("/run/secrets/cw.creds")) == []
    assert _problems(nats_url="nats://a-long-token-0123@nats:4222") == []  # a token


def test_development_refuses_nothing() -> None:
    assert production_problems(Settings.model_validate({"nats_url": "nats://x:4222"})) == []
    assert Settings.model_fields["env"].default == "development"


def test_nats_without_credentials() -> None:
    assert _problems(nats_url="nats://nats:4222,nats://nats2:4222") == [
        "NATS has no credentials: set CW_NATS_CREDS, or a user and password in CW_NATS_URL"
    ]


def test_database_urls_without_a_password() -> None:
    assert _problems(
        database_url="postgresql://cw_service@postgres/chuangwei",
        reader_database_url="postgresql://cw_reader@postgres/chuangwei",
        admin_database_url="postgresql://postgres@postgres/postgres",
    ) == [
        "CW_DATABASE_URL has no password",
        "CW_READER_DATABASE_URL has no password",
        "CW_ADMIN_DATABASE_URL has no password",
    ]


@pytest.mark.parametrize("secret", ["postgres", "changeme", "PASSWORD", "secret", "chuangwei"])
def test_default_secrets_are_refused_and_never_shown(secret: str) -> None:
    problems = _problems(
        nats_url=f"nats://projector:{secret}@nats:4222",
        database_url=f"postgresql://cw_service:{secret}@postgres/chuangwei",
        reader_password=SecretStr(secret),
    )
    assert problems == [
        "CW_NATS_URL's password is a default one: choose another",
        "CW_DATABASE_URL's password is a default one: choose another",
        "CW_READER_PASSWORD is a default one: choose another",
    ]
    assert not any(secret.lower() in p.lower().replace("password", "") for p in problems)


def test_a_default_token_is_refused() -> None:
    assert _problems(nats_url="nats://secret@nats:4222") == [
        "CW_NATS_URL's token is a default one: choose another"
    ]


def test_every_problem_at_once() -> None:
    problems = _problems(
        nats_url="nats://nats:4222", database_url="postgresql://postgres@127.0.0.1/chuangwei"
    )
    assert len(problems) == 2


def test_the_shipped_example_passwords_are_defaults() -> None:
    # What the compose file's comments and the README show as placeholders.
    assert {"postgres", "changeme", "password", "secret"} <= DEFAULT_SECRETS


SHIPPED_SECRET = re.compile(
    r"""(?ix)[\w.-]*(?:password|passwd|token|secret)\b["']?\s*[:=]\s*["']?([^\s"',}#]+)"""
)

COMPOSE_DEFAULT = re.compile(r"(?i)\$\{\w*(?:password|passwd|token|secret)\w*:?-([^}]*)\}")


def test_every_secret_shipped_in_an_example_is_refused_in_production() -> None:
    # A value written in deploy/ or docker-compose.yml (not a ${VARIABLE}) is one anyone can
    # read: production must refuse it, so it has to be among the defaults.
    root = Path(__file__).resolve().parents[2]
    files = [root / "docker-compose.yml", *(p for p in (root / "deploy").rglob("*") if p.is_file())]
    texts = [
        path.read_text(encoding="utf-8", errors="replace")
        for path in files
        if path.suffix not in (".json", ".png", ".svg")
    ]
    # A literal value, and a ${VAR:-default}'s default: both are shipped.
    found = [v for text in texts for v in SHIPPED_SECRET.findall(text)]
    found += [v for text in texts for v in COMPOSE_DEFAULT.findall(text)]
    # ${VAR}, ${VAR:?…} (required) and "…" placeholders ship nothing.
    shipped = {v for v in found if v and not v.startswith(("$", "?", "…", "<"))}
    assert {v for v in shipped if v.lower() not in DEFAULT_SECRETS} == set()
