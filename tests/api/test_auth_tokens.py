"""Token lifecycle: rotation, reuse detection, logout, immediate effect of account changes,
throttling, and a JWT tampering set that must always end in 401 (never 500)."""

from __future__ import annotations

import base64
import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jwt
import pytest

from eduflow.models.users import Role
from tests.conftest import TEST_SECRET
from tests.factories import DEFAULT_PASSWORD, make_user

LOGIN = "/api/v1/auth/login/"
REFRESH = "/api/v1/auth/refresh/"
LOGOUT = "/api/v1/auth/logout/"
ME = "/api/v1/auth/me/"
USERS = "/api/v1/users/"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _tokens(client: Any, username: str, password: str = DEFAULT_PASSWORD) -> dict[str, Any]:
    response = client.post(LOGIN, json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return dict(response.json())


@pytest.fixture
def alice(session: Any) -> Any:
    user = make_user(session, username="alice")
    session.commit()
    return user


def test_refresh_rotates_and_the_old_refresh_token_is_spent(client: Any, alice: Any) -> None:
    first = _tokens(client, "alice")
    rotated = client.post(REFRESH, json={"refresh": first["refresh"]})
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()
    assert second["refresh"] != first["refresh"] and second["access"] != first["access"]
    assert client.get(ME, headers=_bearer(second["access"])).status_code == 200
    # The next rotation works from the new token...
    third = client.post(REFRESH, json={"refresh": second["refresh"]})
    assert third.status_code == 200


def test_reuse_of_a_spent_refresh_token_revokes_the_whole_login(client: Any, alice: Any) -> None:
    first = _tokens(client, "alice")
    second = client.post(REFRESH, json={"refresh": first["refresh"]}).json()
    other_login = _tokens(client, "alice")

    reuse = client.post(REFRESH, json={"refresh": first["refresh"]})
    assert reuse.status_code == 401
    assert reuse.json()["type"].endswith("/refresh-token-reused")
    # Every token of that login is dead now, including the newest pair...
    assert client.get(ME, headers=_bearer(second["access"])).status_code == 401
    assert client.post(REFRESH, json={"refresh": second["refresh"]}).status_code == 401
    # ...but another login of the same user is untouched.
    assert client.get(ME, headers=_bearer(other_login["access"])).status_code == 200


def test_logout_ends_the_login(client: Any, alice: Any) -> None:
    pair = _tokens(client, "alice")
    assert client.get(ME, headers=_bearer(pair["access"])).status_code == 200
    out = client.post(LOGOUT, json={"refresh": pair["refresh"]})
    assert out.status_code == 204 and out.content == b""
    assert client.get(ME, headers=_bearer(pair["access"])).status_code == 401
    assert client.post(REFRESH, json={"refresh": pair["refresh"]}).status_code == 401
    # Logging out twice is harmless; a garbage token is a 401.
    assert client.post(LOGOUT, json={"refresh": pair["refresh"]}).status_code == 204
    assert client.post(LOGOUT, json={"refresh": "garbage"}).status_code == 401


def test_deactivation_and_role_change_take_effect_on_the_next_request(
    client: Any, session: Any, login: Any
) -> None:
    make_user(session, Role.admin, username="root")
    student = make_user(session, username="sam")
    session.commit()
    admin = login("root")
    pair = _tokens(client, "sam")
    headers = _bearer(pair["access"])
    assert client.get(ME, headers=headers).status_code == 200  # fills the auth-state cache

    promoted = client.patch(f"{USERS}{student.id}/", json={"role": "instructor"}, headers=admin)
    assert promoted.status_code == 200 and promoted.json()["role"] == "instructor"
    # The same access token works at once, with the new role.
    me = client.get(ME, headers=headers)
    assert me.status_code == 200 and me.json()["role"] == "instructor"
    course = {"title": "Promoted at once", "is_published": True}
    assert client.post("/api/v1/courses/", json=course, headers=headers).status_code == 201
    demoted = client.patch(f"{USERS}{student.id}/", json={"role": "student"}, headers=admin)
    assert demoted.status_code == 200
    assert client.post("/api/v1/courses/", json=course, headers=headers).status_code == 403
    assert client.get(ME, headers=headers).json()["role"] == "student"
    client.patch(f"{USERS}{student.id}/", json={"role": "instructor"}, headers=admin)
    # The refresh token still works and yields a token for the new role.
    renewed = client.post(REFRESH, json={"refresh": pair["refresh"]})
    assert renewed.status_code == 200
    headers = _bearer(renewed.json()["access"])
    assert client.get(ME, headers=headers).json()["role"] == "instructor"

    off = client.patch(f"{USERS}{student.id}/", json={"is_active": False}, headers=admin)
    assert off.status_code == 200 and off.json()["is_active"] is False
    assert client.get(ME, headers=headers).status_code == 401
    assert client.post(REFRESH, json={"refresh": renewed.json()["refresh"]}).status_code == 401
    # Reactivation does not resurrect the old logins.
    client.patch(f"{USERS}{student.id}/", json={"is_active": True}, headers=admin)
    assert client.get(ME, headers=headers).status_code == 401
    assert client.get(ME, headers=_bearer(_tokens(client, "sam")["access"])).status_code == 200


def test_concurrent_refreshes_of_one_token_let_exactly_one_through(
    live_server: Any, session: Any
) -> None:
    import httpx

    make_user(session, username="racer")
    session.commit()
    pair = httpx.post(
        live_server.url + LOGIN, json={"username": "racer", "password": DEFAULT_PASSWORD}
    ).json()

    def attempt(_: int) -> int:
        url = live_server.url + REFRESH
        return httpx.post(url, json={"refresh": pair["refresh"]}, timeout=30).status_code

    with ThreadPoolExecutor(6) as pool:
        statuses = list(pool.map(attempt, range(6)))
    assert statuses.count(200) == 1, statuses
    assert statuses.count(401) == 5, statuses
    # The losers presented a spent token: the whole login is revoked.
    me = httpx.get(live_server.url + ME, headers=_bearer(pair["access"]))
    assert me.status_code == 401


def test_failed_logins_are_throttled_per_account_with_retry_after(client: Any, alice: Any) -> None:
    for _ in range(5):  # EDUFLOW_LOGIN_MAX_FAILURES defaults to 5
        bad = client.post(LOGIN, json={"username": "alice", "password": "wrong-pass-1"})
        assert bad.status_code == 401
    blocked = client.post(LOGIN, json={"username": "alice", "password": DEFAULT_PASSWORD})
    assert blocked.status_code == 429
    assert blocked.json()["type"].endswith("/throttled")
    assert 1 <= int(blocked.headers["retry-after"]) <= 300
    # The same account by email is the same account.
    by_email = client.post(
        LOGIN, json={"username": "alice@example.com", "password": DEFAULT_PASSWORD}
    )
    assert by_email.status_code == 429


def test_failed_logins_are_throttled_per_client_address(
    client: Any, session: Any, monkeypatch: Any
) -> None:
    from eduflow.config import reset_settings

    monkeypatch.setenv("EDUFLOW_LOGIN_MAX_FAILURES_PER_IP", "3")
    monkeypatch.setenv("EDUFLOW_LOGIN_WINDOW", "2")
    reset_settings()
    make_user(session, username="victim")
    session.commit()
    for i in range(3):  # spraying different accounts from one address
        body = {"username": f"guess{i}", "password": "wrong-pass-1"}
        assert client.post(LOGIN, json=body).status_code == 401
    body = {"username": "victim", "password": DEFAULT_PASSWORD}
    blocked = client.post(LOGIN, json=body)
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) <= 2
    time.sleep(2.1)  # the window passes
    assert client.post(LOGIN, json=body).status_code == 200


# --------------------------------------------------------------------------- tampering


def _b64(data: dict[str, Any] | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _claims(access: str) -> dict[str, Any]:
    return dict(jwt.decode(access, options={"verify_signature": False}))


def _tampered_tokens(pair: dict[str, Any]) -> dict[str, str]:
    access = pair["access"]
    claims = _claims(access)
    header, _payload, signature = access.split(".")
    now = int(time.time())
    admin_claims = {**claims, "role": "admin"}
    return {
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}.",
        "alg none no dot": f"{_b64({'alg': 'none'})}.{_b64(claims)}",
        "wrong key": jwt.encode(claims, "another-secret-key-that-is-long-enough-000", "HS256"),
        "edited payload": f"{header}.{_b64(admin_claims)}.{signature}",
        "refresh as access": pair["refresh"],
        "expired": jwt.encode({**claims, "iat": now - 3600, "exp": now - 60}, TEST_SECRET),
        "no exp": jwt.encode({k: v for k, v in claims.items() if k != "exp"}, TEST_SECRET),
        "no sid": jwt.encode({k: v for k, v in claims.items() if k != "sid"}, TEST_SECRET),
        "no role": jwt.encode({k: v for k, v in claims.items() if k != "role"}, TEST_SECRET),
        "bad role": jwt.encode({**claims, "role": "root"}, TEST_SECRET),
        "sub not a number": jwt.encode({**claims, "sub": "abc"}, TEST_SECRET),
        "sub unknown user": jwt.encode({**claims, "sub": "999999"}, TEST_SECRET),
        "sub as int": jwt.encode({**claims, "sub": 1}, TEST_SECRET),
        "HS512 same key": jwt.encode(claims, TEST_SECRET, algorithm="HS512"),
        "truncated": access[:-5],
        "garbage": "not.a.jwt",
        "empty segments": "..",
        "non ascii": "ééé.ééé.ééé",
        "huge": "a" * 10_000,
    }


def test_tampered_tokens_are_all_401(client: Any, alice: Any) -> None:
    pair = _tokens(client, "alice")
    assert client.get(ME, headers=_bearer(pair["access"])).status_code == 200
    for name, token in _tampered_tokens(pair).items():
        header = f"Bearer {token}".encode()  # bytes: non-ASCII goes on the wire as is
        response = client.get(ME, headers={"Authorization": header})
        assert response.status_code == 401, (name, response.text)
        assert response.headers["content-type"].startswith("application/problem+json"), name


@pytest.mark.parametrize(
    "header",
    ["Bearer", "Bearer ", "Basic YWxpY2U6cHc=", "Token abc", "bearer", "Bearer a b c", "Bearer\t"],
)
def test_malformed_authorization_headers_are_401(client: Any, header: str) -> None:
    response = client.get(ME, headers={"Authorization": header})
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"


def test_access_token_is_not_a_refresh_token(client: Any, alice: Any) -> None:
    pair = _tokens(client, "alice")
    assert client.post(REFRESH, json={"refresh": pair["access"]}).status_code == 401
    assert client.post(LOGOUT, json={"refresh": pair["access"]}).status_code == 401
    forged = jwt.encode({**_claims(pair["refresh"]), "exp": 1}, "x" * 40)
    assert client.post(REFRESH, json={"refresh": forged}).status_code == 401
