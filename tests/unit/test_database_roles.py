"""``cw db setup``'s reading of CW_DATABASE_URL: the services' role is its user."""

from __future__ import annotations

import pytest

from services.common.database_roles import SetupRefused, Target, on_database

pytestmark = pytest.mark.unit


def test_the_role_password_and_database_come_from_the_url() -> None:
    assert Target.of("postgresql://cw_service:p%40ss@db:5432/chuangwei") == Target(
        "cw_service", "p@ss", "chuangwei"
    )
    assert Target.of("postgresql://cw_service@db/chuangwei").password is None


def test_a_url_without_a_user_or_a_database_is_refused() -> None:
    with pytest.raises(SetupRefused, match="names no user"):
        Target.of("postgresql://db:5432/chuangwei")
    with pytest.raises(SetupRefused, match="names no database"):
        Target.of("postgresql://cw_service:x@db:5432")


def test_the_administrator_reaches_the_target_database() -> None:
    assert (
        on_database("postgresql://postgres:pw@db:5432/postgres?sslmode=require", "chuangwei")
        == "postgresql://postgres:pw@db:5432/chuangwei?sslmode=require"
    )
