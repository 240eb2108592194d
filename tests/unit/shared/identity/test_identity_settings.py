"""The settings identity reads: where its tables live, the secret key, the session's lifetime."""

from __future__ import annotations

import pytest

from shared.settings import DEVELOPMENT_SECRET_KEY, Settings


def test_identity_tables_live_in_the_main_database_unless_told_otherwise():
    settings = Settings.from_env({"DATABASE_URL": "postgresql+psycopg://db/closeloop"})
    assert settings.identity_database_url == "postgresql+psycopg://db/closeloop"
    assert Settings().identity_database_url == Settings().database_url


def test_identity_database_url_overrides_the_main_one():
    settings = Settings.from_env(
        {"DATABASE_URL": "postgresql+psycopg://db/closeloop", "IDENTITY_DATABASE_URL": "sqlite:///var/id.db"}
    )
    assert settings.identity_database_url == "sqlite:///var/id.db"
    assert settings.database_url_for("followup") == "postgresql+psycopg://db/closeloop"


def test_the_development_secret_key_is_the_default_and_says_so():
    assert Settings.from_env({}).secret_key == DEVELOPMENT_SECRET_KEY
    assert Settings.from_env({}).uses_development_secret_key
    own = Settings.from_env({"CLOSELOOP_SECRET_KEY": "a-long-random-production-key"})
    assert own.secret_key == "a-long-random-production-key" and not own.uses_development_secret_key


def test_the_session_lifetime_is_a_working_day_unless_set():
    assert Settings.from_env({}).session_lifetime_hours == 12
    assert Settings.from_env({"CLOSELOOP_SESSION_HOURS": "8"}).session_lifetime_hours == 8
    with pytest.raises(ValueError, match="CLOSELOOP_SESSION_HOURS"):
        Settings.from_env({"CLOSELOOP_SESSION_HOURS": "0"})
