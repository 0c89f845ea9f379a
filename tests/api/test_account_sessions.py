"""Own logins (list, revoke), password change, and a role change keeping the token."""

from __future__ import annotations

from typing import Any

from eduflow.models.users import Role
from tests.account_helpers import API, bearer, tokens
from tests.factories import DEFAULT_PASSWORD, make_user

SESSIONS = f"{API}/auth/sessions/"
ME = f"{API}/auth/me/"


def test_sessions_list_shows_each_login_with_agent_and_address(client: Any, session: Any) -> None:
    make_user(session, username="multi")
    session.commit()
    phone = tokens(client, "multi", DEFAULT_PASSWORD, **{"User-Agent": "Phone/1.0"})
    laptop = tokens(client, "multi", DEFAULT_PASSWORD, **{"User-Agent": "Laptop/2.0"})
    listed = client.get(SESSIONS, headers=bearer(laptop["access"]))
    assert listed.status_code == 200, listed.text
    rows = listed.json()
    assert [r["user_agent"] for r in rows] == ["Laptop/2.0", "Phone/1.0"]
    assert [r["current"] for r in rows] == [True, False]
    assert all(r["ip"] == "testclient" for r in rows)
    assert set(rows[0]) == {"id", "created_at", "last_used_at", "user_agent", "ip", "current"}

    # Refresh moves last_used_at (and nothing per request does).
    before = rows[1]["last_used_at"]
    renewed = client.post(f"{API}/auth/refresh/", json={"refresh": phone["refresh"]}).json()
    after = {r["id"]: r for r in client.get(SESSIONS, headers=bearer(laptop["access"])).json()}
    assert after[rows[1]["id"]]["last_used_at"] > before

    phone_id = rows[1]["id"]
    assert (
        client.delete(f"{SESSIONS}{phone_id}/", headers=bearer(laptop["access"])).status_code == 204
    )
    assert client.get(ME, headers=bearer(renewed["access"])).status_code == 401
    assert (
        client.post(f"{API}/auth/refresh/", json={"refresh": renewed["refresh"]}).status_code == 401
    )
    assert client.get(ME, headers=bearer(laptop["access"])).status_code == 200
    assert [r["id"] for r in client.get(SESSIONS, headers=bearer(laptop["access"])).json()] == [
        rows[0]["id"]
    ]
    assert (
        client.delete(f"{SESSIONS}{phone_id}/", headers=bearer(laptop["access"])).status_code == 404
    )
    assert client.get(SESSIONS).status_code == 401


def test_another_users_session_is_404_and_stays_live(client: Any, session: Any) -> None:
    make_user(session, username="mallory")
    make_user(session, username="victim")
    session.commit()
    attacker = tokens(client, "mallory", DEFAULT_PASSWORD)
    victim = tokens(client, "victim", DEFAULT_PASSWORD)
    [victim_session] = client.get(SESSIONS, headers=bearer(victim["access"])).json()
    gone = client.delete(f"{SESSIONS}{victim_session['id']}/", headers=bearer(attacker["access"]))
    assert gone.status_code == 404
    assert client.delete(
        f"{SESSIONS}{'z' * 65}/", headers=bearer(attacker["access"])
    ).status_code in (404, 422)
    assert client.get(ME, headers=bearer(victim["access"])).status_code == 200


def test_a_password_change_keeps_this_login_and_ends_the_others(client: Any, session: Any) -> None:
    make_user(session, username="mover")
    session.commit()
    here = tokens(client, "mover", DEFAULT_PASSWORD)
    there = tokens(client, "mover", DEFAULT_PASSWORD)
    url = f"{API}/auth/password/"
    wrong = client.post(
        url,
        json={"current_password": "nope-nope-1", "new_password": "fresh-pass-11"},
        headers=bearer(here["access"]),
    )
    assert wrong.status_code == 403
    weak = client.post(
        url,
        json={"current_password": DEFAULT_PASSWORD, "new_password": "mover"},
        headers=bearer(here["access"]),
    )
    assert weak.status_code == 422
    ok = client.post(
        url,
        json={"current_password": DEFAULT_PASSWORD, "new_password": "fresh-pass-11"},
        headers=bearer(here["access"]),
    )
    assert ok.status_code == 204, ok.text
    assert client.get(ME, headers=bearer(here["access"])).status_code == 200
    assert client.post(f"{API}/auth/refresh/", json={"refresh": here["refresh"]}).status_code == 200
    assert client.get(ME, headers=bearer(there["access"])).status_code == 401
    assert (
        client.post(f"{API}/auth/refresh/", json={"refresh": there["refresh"]}).status_code == 401
    )
    tokens(client, "mover", "fresh-pass-11")


def test_promote_and_demote_with_the_same_token(client: Any, session: Any, login: Any) -> None:
    make_user(session, Role.admin, username="root")
    pupil = make_user(session, username="riser")
    session.commit()
    admin = login("root")
    headers = bearer(tokens(client, "riser", DEFAULT_PASSWORD)["access"])
    course = {"title": "Riser's course"}
    assert client.post(f"{API}/courses/", json=course, headers=headers).status_code == 403
    client.patch(f"{API}/users/{pupil.id}/", json={"role": "instructor"}, headers=admin)
    assert client.post(f"{API}/courses/", json=course, headers=headers).status_code == 201
    client.patch(f"{API}/users/{pupil.id}/", json={"role": "student"}, headers=admin)
    assert client.post(f"{API}/courses/", json=course, headers=headers).status_code == 403
    assert client.get(ME, headers=headers).json()["role"] == "student"
