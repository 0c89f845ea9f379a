"""CORS per ``EDUFLOW_CORS_ORIGINS``: preflights answered and headers added for the
configured origins only, on routed answers and on the fast paths' answers alike."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from eduflow.models.users import Role
from eduflow.services.auth import issue_tokens
from tests.factories import make_course, make_user

APP_ORIGIN = "https://app.example.com"
OTHER_ORIGIN = "https://evil.example.net"


@pytest.fixture
def cors_client(monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """A client of an app configured with two origins (one written with a trailing slash)."""
    from eduflow.api.app import create_app
    from eduflow.config import reset_settings

    monkeypatch.setenv("EDUFLOW_CORS_ORIGINS", f" {APP_ORIGIN}/ , http://localhost:5173")
    reset_settings()
    with TestClient(create_app(), base_url="http://testserver") as client:
        yield client


@pytest.fixture
def routed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Requests that got past the fast paths into the framework."""
    seen: list[str] = []
    original = FastAPI.__call__

    async def spy(self: Any, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            seen.append(f"{scope['method']} {scope['path']}")
        await original(self, scope, receive, send)

    monkeypatch.setattr(FastAPI, "__call__", spy)
    return seen


def _preflight(client: TestClient, origin: str, method: str = "POST") -> Any:
    return client.options(
        "/api/v1/enrollments/",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
        },
    )


def test_preflight_of_a_configured_origin_is_answered(cors_client: TestClient) -> None:
    response = _preflight(cors_client, APP_ORIGIN)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == APP_ORIGIN
    methods = response.headers["access-control-allow-methods"]
    assert {"GET", "POST", "PATCH", "DELETE"} <= set(methods.replace(" ", "").split(","))
    allowed = response.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed and "idempotency-key" in allowed
    assert "access-control-allow-credentials" not in response.headers  # bearer tokens only


def test_other_origins_get_no_cors_headers(cors_client: TestClient) -> None:
    preflight = _preflight(cors_client, OTHER_ORIGIN)
    assert preflight.status_code == 405  # as without CORS: OPTIONS is no route
    assert not [h for h in preflight.headers if h.startswith("access-control-")]
    response = cors_client.get("/api/v1/courses/", headers={"Origin": OTHER_ORIGIN})
    assert response.status_code == 200
    assert not [h for h in response.headers if h.startswith("access-control-")]
    assert "Origin" in response.headers["vary"]


def test_routed_and_fast_path_answers_carry_the_headers(
    cors_client: TestClient, session: Any, routed: list[str]
) -> None:
    make_course(session, capacity=5)
    student = make_user(session, Role.student)
    bearer = {"Authorization": f"Bearer {issue_tokens(session, student).access}"}
    session.commit()
    headers = {"Origin": "http://localhost:5173"}
    first = cors_client.get("/api/v1/courses/", headers=headers)  # a miss: routed
    routed.clear()
    again = cors_client.get("/api/v1/courses/", headers=headers)  # a hit: answered in front
    assert routed == []
    for response in (first, again):
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == "http://localhost:5173"
        assert "X-Request-ID" in response.headers["access-control-expose-headers"]
    # A plain enrollment is answered in front of the framework too.
    assert cors_client.get("/api/v1/auth/me/", headers=bearer).status_code == 200
    course_id = first.json()["results"][0]["id"]
    routed.clear()
    enrolled = cors_client.post(
        "/api/v1/enrollments/", json={"course": course_id}, headers={**bearer, **headers}
    )
    assert enrolled.status_code == 201, enrolled.text
    assert routed == []
    assert enrolled.headers["access-control-allow-origin"] == "http://localhost:5173"
    # Problems too: a browser app must be able to read why it failed.
    failed = cors_client.get("/api/v1/users/", headers=headers)
    assert failed.status_code == 401
    assert failed.headers["access-control-allow-origin"] == "http://localhost:5173"


def test_no_cors_headers_by_default(client: Any) -> None:
    assert _preflight(client, APP_ORIGIN).status_code == 405
    response = client.get("/api/v1/courses/", headers={"Origin": APP_ORIGIN})
    assert not [h for h in response.headers if h.startswith("access-control-")]


def test_a_preflight_is_a_request_like_any_other(cors_client: TestClient) -> None:
    """Its id and timing headers, and its count in the metrics under a bounded label."""
    given = "0b7f3c1e-6a2d-4a3e-9d55-2f4c1b0e8a11"
    response = cors_client.options(
        "/api/v1/enrollments/",
        headers={
            "Origin": APP_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "X-Request-ID": given,
        },
    )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == given
    assert float(response.headers["x-response-time-ms"]) >= 0
    fresh = _preflight(cors_client, APP_ORIGIN)
    assert fresh.headers["x-request-id"] not in ("", given)
    metrics = cors_client.get("/metrics").text
    counted = [
        line
        for line in metrics.splitlines()
        if line.startswith("eduflow_http_requests_total{") and 'route="<preflight>"' in line
    ]
    assert counted and float(counted[0].rsplit(" ", 1)[1]) >= 2, counted
