"""Helpers for account tests: run the emailed jobs, read links from received emails."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

API = "/api/v1"
LINK = re.compile(r"https?://\S+/(?:reset-password|verify-email)\?token=\S+")


def deliver() -> None:
    """Run the queued jobs (the emails) with a real worker, in-process."""
    from tests.jobs.conftest import work_burst

    work_burst()


def links(smtp_server: Any, kind: str) -> list[str]:
    """Tokens of every ``kind`` link (``reset-password``/``verify-email``) received so far,
    read from the plain-text part and checked against the HTML part."""
    tokens = []
    for message in smtp_server.messages:
        plain = message.get_body(("plain",)).get_content()
        html = message.get_body(("html",)).get_content()
        for url in LINK.findall(plain):
            if f"/{kind}?" not in url:
                continue
            token = parse_qs(urlsplit(url).query)["token"][0]
            assert token in html
            tokens.append(token)
    return tokens


def bearer(access: str) -> dict[str, str]:
    """Authorization headers for an access token."""
    return {"Authorization": f"Bearer {access}"}


def tokens(client: Any, username: str, password: str, **headers: str) -> dict[str, Any]:
    """A fresh login's token pair."""
    response = client.post(
        f"{API}/auth/login/", json={"username": username, "password": password}, headers=headers
    )
    assert response.status_code == 200, response.text
    return dict(response.json())
