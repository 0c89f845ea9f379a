"""Common behaviour of every route: request ids, timing, problem details, body limit, logs."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tests.conftest import assert_problem_response
from tests.factories import DEFAULT_PASSWORD, make_user

LOGIN = "/api/v1/auth/login/"
REGISTER = "/api/v1/auth/register/"


@pytest.fixture
def restore_logging() -> Any:
    """Re-point logging at the session's stderr once a test that captured it is over.

    Request it *before* ``capsys``: its teardown then runs after capsys closed its stream.
    """
    yield
    from eduflow.config import reset_settings
    from eduflow.logging import configure_logging

    reset_settings()
    configure_logging()


def test_request_id_is_kept_when_valid_and_made_otherwise(client: Any) -> None:
    kept = client.get("/healthz", headers={"X-Request-ID": "abc-123.def_456"})
    assert kept.headers["x-request-id"] == "abc-123.def_456"
    made = client.get("/healthz")
    assert uuid.UUID(made.headers["x-request-id"]).version == 4
    for bad in ["bad id with spaces", "x" * 200, "<script>", "a\\b"]:
        replaced = client.get("/healthz", headers={"X-Request-ID": bad})
        assert replaced.headers["x-request-id"] != bad
        assert uuid.UUID(replaced.headers["x-request-id"])
    assert float(made.headers["x-response-time-ms"]) >= 0


def test_error_bodies_carry_the_request_id(client: Any) -> None:
    response = client.get("/api/v1/nothing-here/", headers={"X-Request-ID": "trace-42"})
    assert response.status_code == 404
    assert response.json() == {
        "type": "https://eduflow.dev/problems/not-found",
        "title": "Not found",
        "status": 404,
        "detail": "Not Found",
        "instance": "/api/v1/nothing-here/",
        "request_id": "trace-42",
    }


def test_method_not_allowed_is_a_problem(client: Any) -> None:
    response = client.delete(LOGIN)
    assert response.status_code == 405
    assert response.json()["type"].endswith("/method-not-allowed")
    assert "POST" in response.headers["allow"]


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (b'{"username": "x", "password": ', 400, None),
        (b"[1, 2]", 422, "body"),
        (b'{"username": 12, "password": ["a"]}', 422, "password"),
        (b'{"username": "x", "password": "y", "admin": true}', 422, "admin"),
        (b"", 422, "body"),
    ],
)
def test_bad_input_is_4xx_with_field_errors(
    client: Any, body: bytes, status: int, field: str | None
) -> None:
    response = client.post(LOGIN, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.text
    if field:
        assert field in {e["field"] for e in response.json()["errors"]}


def test_malformed_json_points_at_the_body(client: Any) -> None:
    response = client.post(LOGIN, content=b'{"a": ', headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["errors"] == [{"field": "body", "message": "malformed JSON"}]


def test_out_of_range_numbers_are_422(client: Any, session: Any, login: Any) -> None:
    make_user(session, "admin", username="root")
    session.commit()
    headers = login("root")
    for value in ["99999999999999999999999", "-1", "0", "1e3", "abc"]:
        response = client.get(f"/api/v1/users/{value}/", headers=headers)
        assert response.status_code == 422, (value, response.text)
    assert client.get("/api/v1/users/?page=0", headers=headers).status_code == 422
    assert client.get("/api/v1/users/?page_size=101", headers=headers).status_code == 422


def test_bodies_over_one_mib_are_413(client: Any) -> None:
    big = b'{"username": "' + b"a" * (1024 * 1024) + b'", "password": "x"}'
    declared = client.post(LOGIN, content=big, headers={"Content-Type": "application/json"})
    assert declared.status_code == 413
    assert declared.json()["type"].endswith("/payload-too-large")

    def chunks() -> Any:  # no Content-Length: the limit is enforced while streaming
        for _ in range(20):
            yield b"a" * 65536

    streamed = client.post(LOGIN, content=chunks(), headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413
    # Just under the limit is parsed normally (and fails validation, not the size check).
    small = b'{"username": "' + b"a" * 1000 + b'", "password": "x"}'
    ok_size = client.post(LOGIN, content=small, headers={"Content-Type": "application/json"})
    assert ok_size.status_code == 422


def test_unhandled_errors_are_generic_500_problems_logged_with_traceback(
    restore_logging: Any, capsys: Any
) -> None:
    from fastapi.testclient import TestClient

    from eduflow.api.app import create_app

    def boom() -> None:
        raise RuntimeError("secret internals: SELECT * FROM users")

    app = create_app()  # in the test body: logging writes to the captured stderr
    app.add_api_route("/boom", boom)
    with TestClient(app) as client:
        response = client.get("/boom", headers={"X-Request-ID": "req-500"})
    assert_problem_response(response)
    assert response.status_code == 500
    body = response.json()
    assert body["type"].endswith("/internal-error")
    assert body["request_id"] == "req-500"
    assert "secret internals" not in response.text and "Traceback" not in response.text
    err = capsys.readouterr().err
    line = next(json.loads(raw) for raw in err.splitlines() if "unhandled_exception" in raw)
    assert line["request_id"] == "req-500"
    assert line["logger"] == "eduflow.error"
    assert "RuntimeError" in line["exception"] and "Traceback" in line["exception"]


def test_a_lost_database_race_is_503_with_retry_after(client: Any) -> None:
    """A deadlock victim (or serialization failure) is transient: 503 + Retry-After, not 500."""
    from fastapi.testclient import TestClient
    from sqlalchemy import text

    from eduflow.api.app import create_app
    from eduflow.db import session_scope

    def raced() -> None:
        with session_scope() as s:  # PostgreSQL itself raises the deadlock error
            s.execute(text("DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = '40P01'; END $$"))

    app = create_app()
    app.add_api_route("/raced", raced)
    with TestClient(app) as raw:
        response = raw.get("/raced")
    assert_problem_response(response)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json()["detail"] == "A concurrent change got in the way; retry shortly"


def test_database_down_is_503_and_recovers(client: Any, session: Any, monkeypatch: Any) -> None:
    from eduflow.config import reset_settings
    from tests.conftest import TEST_DATABASE_URL, free_port

    make_user(session, username="eve")
    session.commit()
    body = {"username": "eve", "password": DEFAULT_PASSWORD}
    monkeypatch.setenv("EDUFLOW_DATABASE_URL", f"postgresql://postgres@127.0.0.1:{free_port()}/x")
    reset_settings()
    down = client.post(LOGIN, json=body)
    assert down.status_code == 503
    assert down.json()["type"].endswith("/service-unavailable")
    monkeypatch.setenv("EDUFLOW_DATABASE_URL", TEST_DATABASE_URL)
    reset_settings()
    assert client.post(LOGIN, json=body).status_code == 200


def test_the_suite_checks_every_error_response(app: Any, client: Any) -> None:
    from starlette.responses import PlainTextResponse

    assert assert_problem_response in client.event_hooks["response"]
    app.add_api_route("/plain-error", lambda: PlainTextResponse("nope", status_code=400))
    with pytest.raises(AssertionError):
        client.get("/plain-error")


def test_logs_never_contain_passwords_or_tokens(
    restore_logging: Any, client: Any, session: Any, monkeypatch: Any, capsys: Any
) -> None:
    """A login, a refresh and a failed login, logged at DEBUG: no secret text anywhere."""
    from eduflow.api.app import create_app
    from eduflow.config import reset_settings

    monkeypatch.setenv("EDUFLOW_LOG_LEVEL", "DEBUG")
    reset_settings()
    from fastapi.testclient import TestClient

    user = make_user(session, username="frank")
    session.commit()
    secrets = [DEFAULT_PASSWORD, "Wrong-Password-77"]
    with TestClient(create_app()) as debug_client:
        capsys.readouterr()
        pair = debug_client.post(
            LOGIN, json={"username": "frank", "password": DEFAULT_PASSWORD}
        ).json()
        renewed = debug_client.post("/api/v1/auth/refresh/", json={"refresh": pair["refresh"]})
        failed = debug_client.post(LOGIN, json={"username": "frank", "password": secrets[1]})
        me = debug_client.get(
            "/api/v1/auth/me/", headers={"Authorization": f"Bearer {renewed.json()['access']}"}
        )
    assert failed.status_code == 401 and me.status_code == 200
    secrets += [
        pair["access"],
        pair["refresh"],
        renewed.json()["access"],
        renewed.json()["refresh"],
    ]
    secrets += [token.split(".")[2] for token in secrets[2:]]  # signatures alone
    out = capsys.readouterr()
    text = out.err + out.out
    lines = [json.loads(raw) for raw in text.splitlines() if raw.startswith("{")]
    assert lines, "expected JSON log lines"
    for secret in secrets:
        assert secret not in text
    access = [line for line in lines if line.get("logger") == "eduflow.access"]
    assert [a["path"] for a in access] == [
        LOGIN,
        "/api/v1/auth/refresh/",
        LOGIN,
        "/api/v1/auth/me/",
    ]
    assert access[-1]["user_id"] == user.id
    for line in access:
        assert {"timestamp", "level", "event", "logger", "request_id", "method", "path"} <= set(
            line
        )
        assert {"status", "duration_ms", "user_id"} <= set(line)
    assert [a["status"] for a in access] == [200, 200, 401, 200]


def test_nul_character_in_input_is_a_4xx_not_a_500(client: Any) -> None:
    response = client.post(
        "/api/v1/auth/login/", json={"username": "ab\u0000cd", "password": "whatever-123"}
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")


def test_wrong_json_types_are_422_not_coerced(client: Any, session: Any, login: Any) -> None:
    """``true`` is not a capacity of 1, ``"yes"`` is not a boolean, ``2.5`` is not an id;
    ``2.0`` is the integer 2, as JSON Schema (and the OpenAPI document) counts it."""
    from eduflow.models.users import Role
    from tests.factories import make_course

    teacher = make_user(session, Role.instructor, username="teach")
    student = make_user(session, Role.student, username="stud")
    make_user(session, Role.admin, username="root")
    course = make_course(session, owner=teacher)
    session.commit()
    teach, stud, root = login("teach"), login("stud"), login("root")
    courses, lessons = "/api/v1/courses/", "/api/v1/lessons/"
    lesson = {"course": course.id, "title": "Typed"}
    cases: list[tuple[str, str, dict[str, Any], dict[str, str], str]] = [
        ("POST", courses, {"title": "Typed", "capacity": True}, teach, "capacity"),
        ("POST", courses, {"title": "Typed", "capacity": "5"}, teach, "capacity"),
        ("POST", courses, {"title": "Typed", "is_published": "yes"}, teach, "is_published"),
        ("PATCH", f"{courses}{course.id}/", {"is_published": 1}, teach, "is_published"),
        ("POST", lessons, {**lesson, "course": str(course.id)}, teach, "course"),
        ("POST", lessons, {**lesson, "order_index": True}, teach, "order_index"),
        ("POST", lessons, {**lesson, "duration_min": 2.5}, teach, "duration_min"),
        ("POST", "/api/v1/enrollments/", {"course": course.id + 0.5}, stud, "course"),
        ("POST", "/api/v1/enrollments/", {"course": True}, stud, "course"),
        ("PATCH", f"/api/v1/users/{student.id}/", {"is_active": "no"}, root, "is_active"),
    ]
    for method, path, body, headers, field in cases:
        response = client.request(method, path, json=body, headers=headers)
        assert response.status_code == 422, (method, path, body, response.text)
        assert field in {e["field"] for e in response.json()["errors"]}, response.text
    # Nothing was written, and well-typed input still works.
    assert client.get("/api/v1/courses/", headers=teach).json()["count"] == 1
    assert client.get("/api/v1/enrollments/", headers=stud).json()["count"] == 0
    ok = client.post("/api/v1/courses/", json={"title": "Typed", "capacity": 5}, headers=teach)
    assert ok.status_code == 201 and ok.json()["capacity"] == 5
    whole = client.post(lessons, json={**lesson, "duration_min": 2.0}, headers=teach)
    assert whole.status_code == 201 and whole.json()["duration_min"] == 2
