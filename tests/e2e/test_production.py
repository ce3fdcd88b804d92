"""``CW_ENV=production``: a real ``cw`` command refuses unfit settings in one line each, with a
non-zero exit, and shows none of the secrets it was given."""

from __future__ import annotations

import os

import pytest

from services.cli import EXIT_NOT_FOR_PRODUCTION
from tests.support.processes import cw

pytestmark = pytest.mark.e2e

NATS_SECRET = "NatsProdS3cr3t"
DEFAULT = "changeme"


def test_production_refuses_unfit_settings_without_showing_a_secret() -> None:
    env = {
        **os.environ,
        "CW_ENV": "production",
        "CW_NATS_URL": "nats://127.0.0.1:1",
        "CW_DATABASE_URL": "postgresql://cw_service@127.0.0.1:1/chuangwei",
        "CW_READER_DATABASE_URL": f"postgresql://cw_reader:{DEFAULT}@127.0.0.1:1/chuangwei",
        "CW_READER_PASSWORD": DEFAULT,
    }
    for command in (["init"], ["run", "projector"], ["report"]):
        done = cw(env, *command)
        assert done.returncode == EXIT_NOT_FOR_PRODUCTION, done.stderr
        name = command[0]
        assert done.stderr.splitlines() == [
            f"cw {name}: CW_ENV=production: NATS has no credentials: set CW_NATS_CREDS, or a "
            "user and password in CW_NATS_URL",
            f"cw {name}: CW_ENV=production: CW_DATABASE_URL has no password",
            f"cw {name}: CW_ENV=production: CW_READER_DATABASE_URL's password is a default one: "
            "choose another",
            f"cw {name}: CW_ENV=production: CW_READER_PASSWORD is a default one: choose another",
        ]
        assert done.stdout == ""
        assert DEFAULT not in done.stderr

    # Fit settings pass the check: the command then runs (and finds no server there).
    fit = {
        **env,
        "CW_NATS_URL": f"nats://operator:{NATS_SECRET}@127.0.0.1:1",
        "CW_DATABASE_URL": f"postgresql://cw_service:{NATS_SECRET}-pg@127.0.0.1:1/chuangwei",
    }
    for key in ("CW_READER_DATABASE_URL", "CW_READER_PASSWORD"):
        fit.pop(key)
    done = cw(fit, "init")
    assert done.returncode == 2, done.stderr
    assert "CW_ENV=production" not in done.stderr
    assert NATS_SECRET not in done.stdout + done.stderr
