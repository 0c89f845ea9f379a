"""The cached auth state: no query per request, changes from another process take effect on
the next request, Redis outages fall back to the database, stale fills never win."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event

from eduflow.api.deps import CurrentUser
from eduflow.db import get_engine, session_scope
from eduflow.models.users import Role, User
from eduflow.services import auth, auth_state, users
from eduflow.services.permissions import OPERATOR, Principal
from tests.conftest import free_port, reset_process_state
from tests.factories import DEFAULT_PASSWORD, make_user

ME = "/api/v1/auth/me/"


def _whoami(principal: CurrentUser) -> dict[str, Any]:
    return {"id": principal.id, "role": principal.role.value}


@pytest.fixture
def whoami_app(app: Any) -> Any:
    """The app plus a route that needs only the caller (no query of its own)."""
    app.add_api_route("/whoami", _whoami)
    return app


def _count_queries() -> list[str]:
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(get_engine(), "before_cursor_execute", record)
    return statements


def _as_operator(fn: Any, ref: str, *args: Any) -> None:
    """What ``eduflow admin users …`` does: its own transaction, through the services."""
    with session_scope() as session:
        fn(session, OPERATOR, users.get_user_by_ref(session, ref), *args)


def test_authenticated_requests_run_no_query_once_cached(
    whoami_app: Any, client: Any, session: Any, login: Any
) -> None:
    make_user(session, username="quiet")
    session.commit()
    headers = login("quiet")
    assert client.get("/whoami", headers=headers).status_code == 200  # fills the cache
    statements = _count_queries()
    for _ in range(3):
        assert client.get("/whoami", headers=headers).status_code == 200
    assert statements == []


def test_operator_changes_take_effect_on_the_next_request(
    whoami_app: Any, client: Any, session: Any, login: Any
) -> None:
    make_user(session, Role.instructor, username="ivy")
    session.commit()
    headers = login("ivy")
    assert client.get("/whoami", headers=headers).json()["role"] == "instructor"

    _as_operator(users.set_role, "ivy", Role.student)
    # The same token, with the new role (the CLI is another process: only Redis tells).
    assert client.get("/whoami", headers=headers).json()["role"] == "student"

    _as_operator(users.set_active, "ivy", False)
    assert client.get("/whoami", headers=headers).status_code == 401

    _as_operator(users.set_active, "ivy", True)
    headers = login("ivy")
    assert client.get("/whoami", headers=headers).status_code == 200
    _as_operator(users.set_password, "ivy", "a-brand-new-pass-1")
    assert client.get("/whoami", headers=headers).status_code == 401
    assert (
        client.post(
            "/api/v1/auth/login/", json={"username": "ivy", "password": DEFAULT_PASSWORD}
        ).status_code
        == 401
    )
    assert login("ivy", "a-brand-new-pass-1")


def test_a_stale_fill_never_overwrites_a_newer_state() -> None:
    from eduflow.cache.stores import get_redis

    auth_state.publish_user_state(7, 3, "student", False, "late")
    auth_state.publish_user_state(7, 2, "admin", True, "late")  # an older read arriving late
    client = get_redis()
    assert client is not None
    assert client.get("eduflow:auth:user:7") == b"3|student|0|late"
    auth_state.publish_user_state(7, 4, "instructor", True, "late")
    assert client.get("eduflow:auth:user:7") == b"4|instructor|1|late"


def test_redis_down_falls_back_to_the_database_never_fails_open(
    whoami_app: Any, client: Any, session: Any, login: Any, monkeypatch: Any
) -> None:
    make_user(session, username="rita")
    make_user(session, username="rudy")
    session.commit()
    rita, rudy = login("rita"), login("rudy")
    assert client.get("/whoami", headers=rita).status_code == 200  # cached as live in Redis

    monkeypatch.setenv("EDUFLOW_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    reset_process_state()
    _as_operator(users.set_active, "rita", False)  # the write-through cannot reach Redis
    assert client.get("/whoami", headers=rita).status_code == 401
    assert client.get("/whoami", headers=rudy).status_code == 200
    # Login keeps working without Redis (throttling is skipped, the password still checked).
    body = {"username": "rudy", "password": DEFAULT_PASSWORD}
    assert client.post("/api/v1/auth/login/", json=body).status_code == 200


def test_embedded_mode_sees_changes_made_by_another_process(sqlite_url: str) -> None:
    """No Redis: the CLI and the server share only the SQLite file; the check reads it."""
    from fastapi.testclient import TestClient

    from eduflow import schema
    from eduflow.api.app import create_app

    schema.upgrade("head")
    with session_scope() as s:
        users.create_user(s, "solo", "solo@example.com", "solo-pass-123", Role.instructor)
    app = create_app()
    app.add_api_route("/whoami", _whoami)
    with TestClient(app) as client:
        pair = client.post(
            "/api/v1/auth/login/", json={"username": "solo", "password": "solo-pass-123"}
        ).json()
        headers = {"Authorization": f"Bearer {pair['access']}"}
        assert client.get("/whoami", headers=headers).json()["role"] == "instructor"
        _as_operator(users.set_role, "solo", Role.student)
        assert client.get("/whoami", headers=headers).json()["role"] == "student"
        refreshed = client.post("/api/v1/auth/refresh/", json={"refresh": pair["refresh"]})
        headers = {"Authorization": f"Bearer {refreshed.json()['access']}"}
        assert client.get("/whoami", headers=headers).json()["role"] == "student"
        client.post("/api/v1/auth/logout/", json={"refresh": refreshed.json()["refresh"]})
        assert client.get("/whoami", headers=headers).status_code == 401


def test_principal_needs_a_live_session_and_has_the_current_role(session: Any) -> None:
    user = make_user(session, Role.instructor, username="pat")
    pair = auth.issue_tokens(session, user)
    session.commit()
    principal = auth_state.principal_from_access_token(pair.access)
    assert principal == Principal(
        id=user.id, username="pat", role=Role.instructor, session_id=principal.session_id
    )
    with session_scope() as s:
        users.set_role(s, OPERATOR, users.get_user(s, user.id), Role.student)
    assert auth_state.principal_from_access_token(pair.access).role is Role.student
    with session_scope() as s:
        fresh = s.get(User, user.id)
        assert fresh is not None
        auth.revoke_user_sessions(s, user.id, "test")
    from eduflow.errors import Unauthorized

    with pytest.raises(Unauthorized):
        auth_state.principal_from_access_token(pair.access)
