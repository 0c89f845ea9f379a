"""Register, login, me: the contract of the auth routes."""

from __future__ import annotations

from typing import Any

from eduflow.models.users import Role
from tests.factories import DEFAULT_PASSWORD, make_user

REGISTER = "/api/v1/auth/register/"
LOGIN = "/api/v1/auth/login/"
ME = "/api/v1/auth/me/"


def _register(client: Any, **overrides: Any) -> Any:
    body = {"username": "ada.l", "email": "Ada@Example.com", "password": "analytical-42"}
    body.update(overrides)
    return client.post(REGISTER, json=body)


def test_register_creates_a_student_and_login_works(client: Any) -> None:
    response = _register(client)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["username"] == "ada.l"
    assert body["email"] == "ada@example.com"
    assert body["role"] == "student"
    assert set(body) == {"id", "username", "email", "role", "date_joined"}

    login = client.post(LOGIN, json={"username": "ada.l", "password": "analytical-42"})
    assert login.status_code == 200, login.text
    tokens = login.json()
    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] == 900
    assert tokens["access"] and tokens["refresh"]
    assert login.headers["cache-control"] == "no-store"

    me = client.get(ME, headers={"Authorization": f"Bearer {tokens['access']}"})
    assert me.status_code == 200
    assert me.json() == body


def test_login_by_email_case_insensitive(client: Any, session: Any) -> None:
    make_user(session, username="bob", email="bob@example.com")
    session.commit()
    response = client.post(LOGIN, json={"username": "BOB@example.COM", "password": DEFAULT_PASSWORD})
    assert response.status_code == 200, response.text


def test_login_fixture_gives_working_headers(login: Any, client: Any, session: Any) -> None:
    make_user(session, Role.instructor, username="teach")
    session.commit()
    me = client.get(ME, headers=login("teach"))
    assert me.json()["role"] == "instructor"
