"""Email verification: one email at registration, bound to the address, again after a
change; the EDUFLOW_REQUIRE_VERIFIED_EMAIL policy for enrollment."""

from __future__ import annotations

from typing import Any

import pytest

from tests.account_helpers import API, bearer, deliver, links, tokens
from tests.factories import make_course, make_user

VERIFY = f"{API}/auth/verify-email/"
PASSWORD = "analytical-42"


def _register(client: Any, username: str = "ada.l", email: str = "ada@example.com") -> None:
    body = {"username": username, "email": email, "password": PASSWORD, "full_name": "Ada"}
    assert client.post(f"{API}/auth/register/", json=body).status_code == 201


def _me(client: Any, headers: dict[str, str]) -> dict[str, Any]:
    response = client.get(f"{API}/auth/me/", headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_registration_sends_one_link_that_verifies_the_address(
    client: Any, smtp_server: Any
) -> None:
    _register(client)
    deliver()
    [message] = smtp_server.messages
    assert message["To"] == "ada@example.com"
    assert message["Subject"] == "Confirm your email address for EduFlow"
    [token] = links(smtp_server, "verify-email")
    headers = bearer(tokens(client, "ada.l", PASSWORD)["access"])
    assert _me(client, headers)["email_verified"] is False

    assert client.post(VERIFY, json={"token": token}).status_code == 204
    assert _me(client, headers)["email_verified"] is True
    again = client.post(VERIFY, json={"token": token})
    assert again.status_code == 400 and again.json()["type"].endswith("/invalid-token")
    assert client.post(VERIFY, json={"token": "nope"}).status_code == 400


def test_an_email_change_unverifies_and_binds_the_old_link_to_the_old_address(
    client: Any, smtp_server: Any
) -> None:
    _register(client)
    deliver()
    [old_link] = links(smtp_server, "verify-email")
    headers = bearer(tokens(client, "ada.l", PASSWORD)["access"])

    changed = client.patch(f"{API}/auth/me/", json={"email": "Ada@Example.ORG"}, headers=headers)
    assert changed.status_code == 200, changed.text
    assert changed.json()["email"] == "ada@example.org"
    assert changed.json()["email_verified"] is False
    assert client.post(VERIFY, json={"token": old_link}).status_code == 400
    deliver()
    assert [m["To"] for m in smtp_server.messages] == ["ada@example.com", "ada@example.org"]
    new_link = links(smtp_server, "verify-email")[-1]

    # Changing back and forth does not revive a link sent to an address left since.
    assert (
        client.patch(
            f"{API}/auth/me/", json={"email": "ada@example.com"}, headers=headers
        ).status_code
        == 200
    )
    assert client.post(VERIFY, json={"token": new_link}).status_code == 400
    assert client.post(VERIFY, json={"token": old_link}).status_code == 400
    deliver()
    latest = links(smtp_server, "verify-email")[-1]
    assert client.post(VERIFY, json={"token": latest}).status_code == 204
    assert _me(client, headers)["email_verified"] is True


def test_resend_sends_another_link_and_is_throttled(
    client: Any, smtp_server: Any, monkeypatch: Any
) -> None:
    from tests.jobs.conftest import set_env

    set_env(monkeypatch, password_reset_max_per_email="2")
    _register(client)
    headers = bearer(tokens(client, "ada.l", PASSWORD)["access"])
    resend = f"{API}/auth/verify-email/resend/"
    assert client.post(resend).status_code == 401
    assert client.post(resend, headers=headers).status_code == 202
    assert client.post(resend, headers=headers).status_code == 202
    blocked = client.post(resend, headers=headers)
    assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 0
    deliver()
    assert len(links(smtp_server, "verify-email")) == 3  # registration + two resends


@pytest.mark.parametrize("required", [True, False])
def test_the_policy_flag_decides_whether_unverified_students_may_enroll(
    client: Any, session: Any, monkeypatch: Any, smtp_server: Any, required: bool
) -> None:
    from tests.jobs.conftest import set_env

    course = make_course(session)
    make_user(session, username="verified", email_verified=True)
    session.commit()
    set_env(monkeypatch, require_verified_email=str(required).lower())
    _register(client)
    unverified = bearer(tokens(client, "ada.l", PASSWORD)["access"])
    verified = bearer(tokens(client, "verified", "correct-horse-42")["access"])

    response = client.post(f"{API}/enrollments/", json={"course": course.id}, headers=unverified)
    if required:
        assert response.status_code == 403, response.text
        assert response.json()["type"].endswith("/email-not-verified")
        deliver()
        [token] = links(smtp_server, "verify-email")
        assert client.post(VERIFY, json={"token": token}).status_code == 204
        response = client.post(
            f"{API}/enrollments/", json={"course": course.id}, headers=unverified
        )
    assert response.status_code == 201, response.text
    ok = client.post(f"{API}/enrollments/", json={"course": course.id}, headers=verified)
    assert ok.status_code == 201, ok.text


def test_profile_changes_validate_and_conflict(client: Any, session: Any) -> None:
    make_user(session, username="taken", email="taken@example.com")
    session.commit()
    _register(client)
    headers = bearer(tokens(client, "ada.l", PASSWORD)["access"])
    url = f"{API}/auth/me/"
    assert (
        client.patch(url, json={"full_name": "  Ada Lovelace "}, headers=headers).json()[
            "full_name"
        ]
        == "Ada Lovelace"
    )
    assert _me(client, headers)["full_name"] == "Ada Lovelace"  # no stale cached profile
    assert client.patch(url, json={"full_name": ""}, headers=headers).json()["full_name"] == ""
    assert client.patch(url, json={"full_name": "x" * 151}, headers=headers).status_code == 422
    assert client.patch(url, json={"email": "not-an-email"}, headers=headers).status_code == 422
    assert client.patch(url, json={"email": None}, headers=headers).status_code == 422
    assert client.patch(url, json={"role": "admin"}, headers=headers).status_code == 422
    taken = client.patch(url, json={"email": "TAKEN@example.com"}, headers=headers)
    assert taken.status_code == 409
    assert client.patch(url, json={"full_name": "Ada"}).status_code == 401
    me = _me(client, headers)
    assert (me["email"], me["role"]) == ("ada@example.com", "student")
