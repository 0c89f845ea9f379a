"""Settings: secrets and URLs with passwords never show in a repr, a dump or a log line."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

SECRETS = {
    "EDUFLOW_SECRET_KEY": "k" * 40 + "-signing-secret",
    "EDUFLOW_SMTP_URL": "smtp://mailer:smtp-pass-123@127.0.0.1:2525",
    "EDUFLOW_DATABASE_URL": "postgresql://app:db-pass-456@127.0.0.1:5432/eduflow",
    "EDUFLOW_READ_DATABASE_URL": "postgresql://ro:replica-pass-789@127.0.0.1:5432/eduflow",
    "EDUFLOW_REDIS_URL": "redis://:redis-pass-000@127.0.0.1:6379/0",
}
PASSWORDS = (
    "-signing-secret",
    "smtp-pass-123",
    "db-pass-456",
    "replica-pass-789",
    "redis-pass-000",
)


@pytest.fixture
def secret_settings(monkeypatch: pytest.MonkeyPatch) -> Any:
    from eduflow.config import Settings

    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    return Settings()


def test_secrets_never_show_in_repr_str_or_dumps(secret_settings: Any) -> None:
    shown = [
        repr(secret_settings),
        str(secret_settings),
        secret_settings.model_dump_json(),
        json.dumps(secret_settings.model_dump(), default=str),
    ]
    for text in shown:
        for password in PASSWORDS:
            assert password not in text


def test_the_code_that_connects_still_gets_the_values(secret_settings: Any) -> None:
    from eduflow.config import reveal

    assert secret_settings.resolved_secret_key() == SECRETS["EDUFLOW_SECRET_KEY"]
    assert reveal(secret_settings.redis_url) == SECRETS["EDUFLOW_REDIS_URL"]
    assert reveal(secret_settings.smtp_url) == SECRETS["EDUFLOW_SMTP_URL"]
    assert secret_settings.database_url.get_secret_value() == SECRETS["EDUFLOW_DATABASE_URL"]
    assert not secret_settings.is_embedded and not secret_settings.is_sqlite


def test_a_logged_settings_object_shows_no_secret(
    secret_settings: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from eduflow.logging import configure_logging, get_logger

    configure_logging()
    get_logger("eduflow.test").warning("settings_loaded", settings=secret_settings)
    logging.getLogger("eduflow.test").warning("settings %r", secret_settings)
    out = capsys.readouterr()
    assert "settings_loaded" in out.out + out.err
    for password in PASSWORDS:
        assert password not in out.out + out.err


def test_blank_optional_urls_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    from eduflow.config import Settings

    monkeypatch.setenv("EDUFLOW_REDIS_URL", "")
    monkeypatch.setenv("EDUFLOW_SMTP_URL", "")
    settings = Settings()
    assert settings.redis_url is None and settings.smtp_url is None and settings.is_embedded
