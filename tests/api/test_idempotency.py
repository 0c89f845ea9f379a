"""Idempotency-Key on the creating POST routes: replay, conflicts, concurrency, outages."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from eduflow.models import Course, User
from eduflow.models.users import Role
from tests.conftest import free_port
from tests.factories import make_course, make_user

API = "/api/v1"


@pytest.fixture
def grace(session: Any, login: Any) -> dict[str, str]:
    make_user(session, Role.instructor, username="grace")
    session.commit()
    return login("grace")


def _courses(session: Any) -> int:
    session.expire_all()
    return session.execute(select(func.count()).select_from(Course)).scalar()


def test_replay_returns_the_first_response(client: Any, grace: Any, session: Any) -> None:
    headers = {**grace, "Idempotency-Key": "create-1"}
    first = client.post(f"{API}/courses/", json={"title": "Once"}, headers=headers)
    second = client.post(
        f"{API}/courses/",
        content=b'{ "title" :"Once" }',
        headers={**headers, "Content-Type": "application/json"},
    )
    assert first.status_code == second.status_code == 201
    assert second.content == first.content
    assert second.headers["location"] == first.headers["location"]
    assert second.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert _courses(session) == 1


def test_same_key_with_another_body_is_422(client: Any, grace: Any, session: Any) -> None:
    headers = {**grace, "Idempotency-Key": "create-2"}
    assert client.post(f"{API}/courses/", json={"title": "One"}, headers=headers).status_code == 201
    other = client.post(f"{API}/courses/", json={"title": "Two"}, headers=headers)
    assert other.status_code == 422
    assert other.json()["type"].endswith("/idempotency-key-reused")
    assert other.json()["errors"][0]["field"] == "Idempotency-Key"
    assert _courses(session) == 1


def test_keys_are_per_user_and_per_route(client: Any, grace: Any, login: Any, session: Any) -> None:
    make_user(session, Role.instructor, username="alan")
    owner = session.execute(select(User).where(User.username == "grace")).scalar_one()
    course = make_course(session, owner=owner)
    session.commit()
    body = {"title": "Shared key"}
    key = {"Idempotency-Key": "same"}
    assert client.post(f"{API}/courses/", json=body, headers={**grace, **key}).status_code == 201
    alan = client.post(f"{API}/courses/", json=body, headers={**login("alan"), **key})
    assert alan.status_code == 201 and "idempotent-replayed" not in alan.headers
    lesson = client.post(
        f"{API}/lessons/", json={"course": course.id, "title": "Lesson"}, headers={**grace, **key}
    )
    assert lesson.status_code == 201 and "idempotent-replayed" not in lesson.headers
    assert _courses(session) == 3


def test_enrollment_retry_replays_instead_of_409(client: Any, login: Any, session: Any) -> None:
    course = make_course(session)
    make_user(session, username="ada")
    session.commit()
    headers = {**login("ada"), "Idempotency-Key": "enroll-1"}
    first = client.post(f"{API}/enrollments/", json={"course": course.id}, headers=headers)
    retry = client.post(f"{API}/enrollments/", json={"course": course.id}, headers=headers)
    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    plain = client.post(f"{API}/enrollments/", json={"course": course.id}, headers=login("ada"))
    assert plain.status_code == 409
    session.expire_all()
    assert session.get(Course, course.id).seats_taken == 1


def test_client_errors_are_replayed_but_invalid_bodies_release_the_key(
    client: Any, login: Any, grace: Any, session: Any
) -> None:
    make_user(session, username="ada")
    session.commit()
    student = {**login("ada"), "Idempotency-Key": "k"}
    denied = client.post(f"{API}/courses/", json={"title": "Nope"}, headers=student)
    replay = client.post(f"{API}/courses/", json={"title": "Nope"}, headers=student)
    assert denied.status_code == replay.status_code == 403
    assert replay.headers["idempotent-replayed"] == "true"
    same = {k: v for k, v in replay.json().items() if k != "request_id"}
    assert same == {k: v for k, v in denied.json().items() if k != "request_id"}

    headers = {**grace, "Idempotency-Key": "fix-me"}
    bad = client.post(f"{API}/courses/", json={"title": "x"}, headers=headers)
    assert bad.status_code == 422
    fixed = client.post(f"{API}/courses/", json={"title": "Fixed"}, headers=headers)
    assert fixed.status_code == 201


def test_malformed_keys_are_rejected(client: Any, grace: Any, session: Any) -> None:
    for key in ("x" * 256, "   "):
        response = client.post(
            f"{API}/courses/", json={"title": "Keyed"}, headers={**grace, "Idempotency-Key": key}
        )
        assert response.status_code in (400, 422), key
        assert response.headers["content-type"] == "application/problem+json"
    assert _courses(session) == 0


def test_in_flight_key_is_409(client: Any, grace: Any, session: Any) -> None:
    from eduflow.cache.stores import get_store
    from eduflow.services.idempotency import IdempotentRequest

    body = b'{"title": "Slow"}'
    holder = IdempotentRequest(1, "POST /api/v1/courses/", "busy", body)
    assert holder.begin() is None  # another process is running this request right now
    response = client.post(
        f"{API}/courses/",
        content=body,
        headers={**grace, "Idempotency-Key": "busy", "Content-Type": "application/json"},
    )
    assert response.status_code == 409
    assert response.json()["type"].endswith("/idempotency-key-in-flight")
    assert response.headers["retry-after"] == "1"
    holder.abort()
    assert get_store().get(holder.key) is None
    retry = client.post(
        f"{API}/courses/",
        content=body,
        headers={**grace, "Idempotency-Key": "busy", "Content-Type": "application/json"},
    )
    assert retry.status_code == 201


def test_concurrent_requests_with_one_key_make_one_object(
    session: Any, live_server: Any, grace: Any
) -> None:
    async def fire() -> list[httpx.Response]:
        headers = {**grace, "Idempotency-Key": "race"}
        async with httpx.AsyncClient(timeout=30) as client:
            return await asyncio.gather(
                *(
                    client.post(
                        f"{live_server.url}{API}/courses/", json={"title": "Race"}, headers=headers
                    )
                    for _ in range(12)
                )
            )

    responses = asyncio.run(fire())
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {201, 409} and statuses[201] >= 1, statuses
    assert len({r.json()["id"] for r in responses if r.status_code == 201}) == 1
    assert _courses(session) == 1


def test_redis_down_fails_closed_only_with_the_header(
    client: Any, grace: Any, session: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import reset_process_state

    monkeypatch.setenv("EDUFLOW_REDIS_URL", f"redis://127.0.0.1:{free_port()}/2")
    reset_process_state()
    keyed = client.post(
        f"{API}/courses/", json={"title": "Keyed"}, headers={**grace, "Idempotency-Key": "down"}
    )
    assert keyed.status_code == 503
    assert keyed.headers["content-type"] == "application/problem+json"
    plain = client.post(f"{API}/courses/", json={"title": "Plain"}, headers=grace)
    assert plain.status_code == 201
    assert _courses(session) == 1
