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
    assert set(body) == {
        "id",
        "username",
        "email",
        "email_verified",
        "full_name",
        "role",
        "date_joined",
    }
    assert body["full_name"] == "" and body["email_verified"] is False

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
    response = client.post(
        LOGIN, json={"username": "BOB@example.COM", "password": DEFAULT_PASSWORD}
    )
    assert response.status_code == 200, response.text


def test_login_fixture_gives_working_headers(login: Any, client: Any, session: Any) -> None:
    make_user(session, Role.instructor, username="teach")
    session.commit()
    me = client.get(ME, headers=login("teach"))
    assert me.json()["role"] == "instructor"


def test_mass_assignment_is_refused(client: Any) -> None:
    for extra in ({"role": "admin"}, {"is_active": False}, {"id": 99}, {"auth_version": 5}):
        response = _register(client, **extra)
        assert response.status_code == 422, extra
        field = next(iter(extra))
        assert {"field": field, "message": "unknown field"} in response.json()["errors"]
    assert (
        client.post(LOGIN, json={"username": "ada.l", "password": "analytical-42"}).status_code
        == 401
    )


def test_registration_rules(client: Any) -> None:
    cases = {
        "username": ["ab", "has space", "x" * 151, "bad!char"],
        "email": ["not-an-email", "a@", ""],
        "password": ["short7!", "12345678901", "é" * 37, "ada.l"],
    }
    for field, values in cases.items():
        for value in values:
            response = _register(client, **{field: value})
            assert response.status_code == 422, (field, value, response.text)
            fields = {e["field"] for e in response.json()["errors"]}
            assert fields & {field, "body"}, (field, value, fields)
            if field == "password":
                assert value not in response.text  # passwords are never echoed
    # 72 bytes exactly is fine, 73 is not (multi-byte characters count as bytes)
    assert _register(client, password="é" * 36).status_code == 201
    too_long = _register(client, username="other", email="o@example.com", password="a" * 73)
    assert too_long.status_code == 422
    same = _register(client, username="lovelace", email="l@example.com", password="lovelace")
    assert same.status_code == 422
    assert "equal to the username" in same.text


def test_password_errors_name_the_field_in_plain_words(client: Any) -> None:
    same = _register(client, username="lovelace", email="l@example.com", password="lovelace")
    assert same.json()["errors"] == [
        {"field": "password", "message": "must not be equal to the username"}
    ]
    digits = _register(client, password="12345678901")
    assert digits.json()["errors"] == [{"field": "password", "message": "must not be all digits"}]


def test_duplicate_username_and_email_are_409(client: Any) -> None:
    assert _register(client).status_code == 201
    again = _register(client, email="new@example.com")
    assert again.status_code == 409
    assert again.json()["errors"] == [
        {"field": "username", "message": "this username is already taken"}
    ]
    same_email = _register(client, username="someone_else", email="ADA@example.COM")
    assert same_email.status_code == 409
    assert same_email.json()["errors"][0]["field"] == "email"


def test_concurrent_registrations_of_one_name_give_one_account(live_server: Any) -> None:
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    def attempt(i: int) -> int:
        body = {"username": "racer", "email": f"racer{i}@example.com", "password": "pass-word-1"}
        return httpx.post(live_server.url + REGISTER, json=body, timeout=30).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = sorted(pool.map(attempt, range(8)))
    assert statuses.count(201) == 1
    assert set(statuses) <= {201, 409}, statuses


def test_wrong_password_and_unknown_user_look_the_same(client: Any, session: Any) -> None:
    make_user(session, username="carol")
    session.commit()
    wrong = client.post(LOGIN, json={"username": "carol", "password": "nope-nope-1"})
    unknown = client.post(LOGIN, json={"username": "nobody", "password": "nope-nope-1"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"]
    assert wrong.headers["www-authenticate"] == "Bearer"


def test_deactivated_user_cannot_log_in(client: Any, session: Any) -> None:
    make_user(session, username="dave", is_active=False)
    session.commit()
    response = client.post(LOGIN, json={"username": "dave", "password": DEFAULT_PASSWORD})
    assert response.status_code == 403
    assert response.json()["type"].endswith("/account-disabled")


def test_me_requires_a_token(client: Any) -> None:
    response = client.get(ME)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["content-type"].startswith("application/problem+json")


def test_unknown_login_costs_as_much_as_a_known_one(
    client: Any, session: Any, monkeypatch: Any
) -> None:
    """No user enumeration by timing.

    Asserted on the work done first -- an unknown name costs exactly one bcrypt check of
    the same cost factor as a known one -- then on the clock with paired runs: known and
    unknown alternate, and the median of the per-pair ratios must be near 1 (a skipped
    hash would make it ~20x). Load on a shared machine slows both halves of a pair alike.
    """
    import statistics
    import time

    import bcrypt

    from eduflow.config import reset_settings
    from eduflow.services.users import create_user

    monkeypatch.setenv("EDUFLOW_BCRYPT_ROUNDS", "10")
    monkeypatch.setenv("EDUFLOW_LOGIN_MAX_FAILURES", "100")
    reset_settings()
    create_user(session, "timed", "timed@example.com", "the-real-pass-1")
    session.commit()

    checks: list[bytes] = []
    real_check = bcrypt.checkpw

    def counting_check(password: bytes, hashed: bytes) -> bool:
        checks.append(hashed[:7])  # "$2b$10$": scheme and cost factor
        return real_check(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", counting_check)

    def cost(username: str) -> float:
        t = time.perf_counter()
        r = client.post(LOGIN, json={"username": username, "password": "wrong-pass-123"})
        elapsed = time.perf_counter() - t
        assert r.status_code == 401
        return elapsed

    cost("nobody-here")  # warm the dummy hash
    checks.clear()
    cost("timed")
    cost("nobody-here")
    assert checks == [b"$2b$10$", b"$2b$10$"]  # one check each, same cost

    ratios = []
    for i in range(7):
        if i % 2:  # alternate the order inside a pair, too
            unknown, known = cost("nobody-here"), cost("timed")
        else:
            known, unknown = cost("timed"), cost("nobody-here")
        ratios.append(unknown / known)
    assert 0.5 < statistics.median(ratios) < 2.0, ratios


def test_registration_takes_an_optional_full_name(client: Any) -> None:
    response = _register(client, full_name="  Ada King, Countess of Lovelace ")
    assert response.status_code == 201, response.text
    assert response.json()["full_name"] == "Ada King, Countess of Lovelace"
    tokens = client.post(LOGIN, json={"username": "ada.l", "password": "analytical-42"}).json()
    me = client.get(ME, headers={"Authorization": f"Bearer {tokens['access']}"}).json()
    assert me["full_name"] == "Ada King, Countess of Lovelace"
    assert me["email_verified"] is False

    too_long = _register(client, username="bob.b", email="b@example.com", full_name="x" * 151)
    assert too_long.status_code == 422
    assert too_long.json()["errors"][0]["field"].endswith("full_name")
    wrong_type = _register(client, username="bob.c", email="c@example.com", full_name=7)
    assert wrong_type.status_code == 422
