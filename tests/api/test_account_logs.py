"""Logs at DEBUG through a reset, a verification and a password change: no token sent by
email and no password appears in any log line (API, worker and mailer alike).

``capfd``: the worker runs each job in a forked work horse, whose lines reach the file
descriptors, not ``sys.stderr``."""

from __future__ import annotations

import json
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.account_helpers import API, LINK, bearer, deliver

PASSWORD = "first-secret-pass-1"
RESET_TO = "second-secret-pass-2"
CHANGED_TO = "third-secret-pass-3"


@pytest.fixture
def logging_restored() -> Any:
    """Re-point logging at the session's stderr afterwards (request it before capfd)."""
    yield
    from eduflow.config import reset_settings
    from eduflow.logging import configure_logging

    reset_settings()
    configure_logging()


def _tokens_in(mail_dir: Path) -> list[str]:
    found = []
    for path in sorted(mail_dir.glob("*.eml")):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        plain = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        found += [parse_qs(urlsplit(url).query)["token"][0] for url in LINK.findall(plain)]
    return found


def test_no_emailed_token_and_no_password_reaches_the_logs(
    logging_restored: Any,
    monkeypatch: Any,
    capfd: Any,
    tmp_path: Path,
) -> None:
    from fastapi.testclient import TestClient

    from eduflow.api.app import create_app
    from eduflow.config import reset_settings

    monkeypatch.setenv("EDUFLOW_LOG_LEVEL", "DEBUG")
    monkeypatch.delenv("EDUFLOW_SMTP_URL", raising=False)
    monkeypatch.setenv("EDUFLOW_MAIL_DIR", str(tmp_path))
    reset_settings()
    with TestClient(create_app()) as client:
        capfd.readouterr()
        body = {"username": "logme", "email": "logme@example.com", "password": PASSWORD}
        assert client.post(f"{API}/auth/register/", json=body).status_code == 201
        deliver()
        [verify] = _tokens_in(tmp_path)
        assert client.post(f"{API}/auth/verify-email/", json={"token": verify}).status_code == 204
        reset = client.post(f"{API}/auth/password-reset/", json={"email": "logme@example.com"})
        assert reset.status_code == 202
        deliver()
        [reset_token] = [t for t in _tokens_in(tmp_path) if t != verify]
        confirm = {"token": reset_token, "password": RESET_TO}
        assert client.post(f"{API}/auth/password-reset/confirm/", json=confirm).status_code == 204
        assert client.post(f"{API}/auth/password-reset/confirm/", json=confirm).status_code == 400
        login = client.post(f"{API}/auth/login/", json={"username": "logme", "password": RESET_TO})
        change = {"current_password": RESET_TO, "new_password": CHANGED_TO}
        headers = bearer(login.json()["access"])
        assert client.post(f"{API}/auth/password/", json=change, headers=headers).status_code == 204
        gone = client.request(
            "DELETE", f"{API}/auth/me/", json={"password": CHANGED_TO}, headers=headers
        )
        assert gone.status_code == 204
    out = capfd.readouterr()
    text = out.err + out.out
    lines = [json.loads(raw) for raw in text.splitlines() if raw.startswith("{")]
    paths = {line.get("path") for line in lines if line.get("logger") == "eduflow.access"}
    assert {f"{API}/auth/verify-email/", f"{API}/auth/password-reset/confirm/"} <= paths
    assert any("Enqueueing job" in str(line.get("event")) for line in lines)  # the worker's
    for secret in (verify, reset_token, PASSWORD, RESET_TO, CHANGED_TO):
        assert secret not in text
