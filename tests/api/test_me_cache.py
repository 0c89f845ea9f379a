"""``GET /auth/me/`` without a database query: the encoded body is kept in Redis next to
the auth state and served only while both are current, so a role change, a deactivation
or a logout still takes effect on the very next request."""

from __future__ import annotations

from typing import Any

import pytest

from eduflow.models.users import Role
from tests.factories import DEFAULT_PASSWORD, make_user
from tests.queries import counted_queries

ME = "/api/v1/auth/me/"
USERS = "/api/v1/users/"


@pytest.fixture
def people(session: Any) -> dict[str, Any]:
    """sam, a student, and root, an admin."""
    sam = make_user(session, username="sam", email="Sam@Example.com")
    make_user(session, Role.admin, username="root")
    session.commit()
    return {"sam": sam.id}


def _pair(client: Any, username: str) -> dict[str, Any]:
    response = client.post(
        "/api/v1/auth/login/", json={"username": username, "password": DEFAULT_PASSWORD}
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_me_is_served_without_a_database_query_once_known(
    client: Any, people: dict[str, Any]
) -> None:
    headers = _bearer(_pair(client, "sam")["access"])
    first = client.get(ME, headers=headers)
    assert first.status_code == 200, first.text
    with counted_queries() as statements:
        second = client.get(ME, headers=headers)
    assert statements == []
    assert second.status_code == 200
    assert second.content == first.content
    assert second.json() == {
        "id": people["sam"],
        "username": "sam",
        "email": "sam@example.com",
        "email_verified": False,
        "full_name": "",
        "role": "student",
        "date_joined": first.json()["date_joined"],
    }
    assert second.headers["content-type"] == "application/json"
    assert second.headers["cache-control"] == "no-store"
    assert second.headers["x-request-id"] and "x-response-time-ms" in second.headers


def test_me_is_fresh_after_a_role_change(client: Any, login: Any, people: dict[str, Any]) -> None:
    root = login("root")
    pair = _pair(client, "sam")
    headers = _bearer(pair["access"])
    client.get(ME, headers=headers)
    assert client.get(ME, headers=headers).json()["role"] == "student"  # cached now

    promoted = client.patch(f"{USERS}{people['sam']}/", json={"role": "instructor"}, headers=root)
    assert promoted.status_code == 200, promoted.text
    assert client.get(ME, headers=headers).json()["role"] == "instructor"  # same token, new role
    renewed = _bearer(
        client.post("/api/v1/auth/refresh/", json={"refresh": pair["refresh"]}).json()["access"]
    )
    assert client.get(ME, headers=renewed).json()["role"] == "instructor"
    with counted_queries() as statements:
        assert client.get(ME, headers=renewed).json()["role"] == "instructor"
    assert statements == []

    # Back and forth: a body built under an older version is never answered.
    client.patch(f"{USERS}{people['sam']}/", json={"role": "student"}, headers=root)
    student_again = _bearer(_pair(client, "sam")["access"])
    assert client.get(ME, headers=student_again).json()["role"] == "student"
    assert client.get(ME, headers=renewed).json()["role"] == "student"  # its token too


@pytest.mark.parametrize("change", ["logout", "deactivation"])
def test_a_cached_me_never_admits_a_token_that_stopped_working(
    client: Any, login: Any, people: dict[str, Any], change: str
) -> None:
    root = login("root")
    pair = _pair(client, "sam")
    headers = _bearer(pair["access"])
    client.get(ME, headers=headers)
    assert client.get(ME, headers=headers).status_code == 200
    if change == "logout":
        done = client.post("/api/v1/auth/logout/", json={"refresh": pair["refresh"]})
    else:
        done = client.patch(f"{USERS}{people['sam']}/", json={"is_active": False}, headers=root)
    assert done.status_code < 300, done.text
    response = client.get(ME, headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")


def test_a_body_stored_under_another_version_is_not_served(
    client: Any, people: dict[str, Any]
) -> None:
    from eduflow.cache.stores import get_redis
    from eduflow.services.auth_state import profile_key

    headers = _bearer(_pair(client, "sam")["access"])
    real = client.get(ME, headers=headers).content
    redis = get_redis()
    assert redis is not None
    stored = redis.get(profile_key(people["sam"]))
    assert stored is not None and stored.endswith(real)
    version = int(stored.split(b"|", 1)[0])
    forged = b'{"id": 0, "username": "mallory"}'
    redis.set(profile_key(people["sam"]), b"%d|" % (version + 1) + forged)
    with counted_queries() as statements:
        answer = client.get(ME, headers=headers)
    assert answer.content == real
    assert statements, "a stale body must send the request to the database"
