"""Cache hits answered from the server process's near cache (no Redis round trip) stay
exact: writes made through another Redis connection -- another server process, a worker,
the CLI -- and logouts are seen by the very next request."""

from __future__ import annotations

from typing import Any

from eduflow.db import session_scope
from eduflow.models.users import Role
from eduflow.services import courses
from eduflow.services.permissions import Principal
from tests.factories import DEFAULT_PASSWORD, make_course, make_user

LIST = "/api/v1/courses/"


def _login(client: Any, username: str) -> dict[str, Any]:
    response = client.post(
        "/api/v1/auth/login/", json={"username": username, "password": DEFAULT_PASSWORD}
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_writes_from_another_connection_are_seen_by_the_next_read(
    client: Any, session: Any
) -> None:
    owner = make_user(session, Role.instructor, username="ada")
    course_id = make_course(session, owner=owner, title="Round 0").id
    session.commit()
    actor = Principal(id=owner.id, username="ada", role=Role.instructor)
    detail = f"{LIST}{course_id}/"
    client.get(detail)
    assert client.get(detail).headers["x-cache"] == "hit"
    for round_ in range(1, 21):
        # The service commits and invalidates through its own (blocking) Redis client,
        # as another process would; the read goes through the server's near cache.
        with session_scope() as other:
            courses.update_course(other, actor, course_id, {"title": f"Round {round_}"})
        assert client.get(detail).json()["title"] == f"Round {round_}"
        assert client.get(LIST).json()["results"][0]["title"] == f"Round {round_}"
        hit = client.get(detail)
        assert hit.headers["x-cache"] == "hit" and hit.json()["title"] == f"Round {round_}"


def test_a_logout_turns_that_session_away_at_once_and_only_that_one(
    client: Any, session: Any
) -> None:
    make_user(session, username="sam")
    session.commit()
    first, second = _login(client, "sam"), _login(client, "sam")
    bearer = {name: {"Authorization": f"Bearer {pair['access']}"} for name, pair in
              (("first", first), ("second", second))}  # fmt: skip
    for headers in bearer.values():
        client.get(LIST, headers=headers)
        assert client.get(LIST, headers=headers).headers["x-cache"] == "hit"
    out = client.post("/api/v1/auth/logout/", json={"refresh": first["refresh"]})
    assert out.status_code == 204
    assert client.get(LIST, headers=bearer["first"]).status_code == 401
    assert client.get("/api/v1/auth/me/", headers=bearer["first"]).status_code == 401
    still = client.get(LIST, headers=bearer["second"])
    assert still.status_code == 200 and still.headers["x-cache"] == "hit"
    # Hits of the live session since then do not let the revoked one back in.
    assert client.get(LIST, headers=bearer["second"]).headers["x-cache"] == "hit"
    assert client.get(LIST, headers=bearer["first"]).status_code == 401


def test_me_changed_from_another_connection_is_seen_by_the_next_read(
    client: Any, session: Any
) -> None:
    from eduflow.models.users import ProfileUpdate
    from eduflow.services import accounts

    user = make_user(session, username="mia")
    session.commit()
    pair = _login(client, "mia")
    headers = {"Authorization": f"Bearer {pair['access']}"}
    actor = Principal(id=user.id, username="mia", role=Role.student, session_id="")
    client.get("/api/v1/auth/me/", headers=headers)
    for round_ in range(1, 21):
        # The answer decided from the near cache is reused between changes; a change
        # committed through another Redis connection must end that at once.
        for _ in range(3):
            assert client.get("/api/v1/auth/me/", headers=headers).status_code == 200
        with session_scope() as other:
            accounts.update_profile(other, actor, ProfileUpdate(full_name=f"Mia {round_}"))
        assert (
            client.get("/api/v1/auth/me/", headers=headers).json()["full_name"] == f"Mia {round_}"
        )
