"""Plain enrollment POSTs are answered in front of the application (``api.fast_writes``):
the same answers as the route's, and everything that is not plain still reaches the route,
body included."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from eduflow.models import OutboxJob
from eduflow.models.users import Role
from eduflow.services.auth import issue_tokens
from tests.factories import make_course, make_user

URL = "/api/v1/enrollments/"


@pytest.fixture
def routed(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The ``METHOD path`` of every request that reached the application behind the fast
    paths."""
    seen: list[str] = []
    original = FastAPI.__call__

    async def spy(self: Any, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            seen.append(f"{scope['method']} {scope['path']}")
        await original(self, scope, receive, send)

    monkeypatch.setattr(FastAPI, "__call__", spy)
    yield seen


def _bearer(session: Any, role: Role = Role.student) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_tokens(session, make_user(session, role)).access}"}


def _warm(client: Any, *bearers: dict[str, str]) -> None:
    """Have each caller's state cached, as a login does (tokens made in the test session
    are not written through)."""
    for headers in bearers:
        assert client.get("/api/v1/auth/me/", headers=headers).status_code == 200


def _course_and_student(client: Any, session: Any, routed: list[str]) -> tuple[int, dict[str, str]]:
    """A published course with seats and a student whose state is cached; nothing routed yet."""
    course = make_course(session, capacity=5)
    student = _bearer(session)
    session.commit()
    _warm(client, student)
    routed.clear()
    return course.id, student


def _same(fast: Any, routed: Any) -> None:
    """The two answers agree in everything but the request's own id."""
    assert fast.status_code == routed.status_code
    assert fast.headers["content-type"] == routed.headers["content-type"]
    one, other = fast.json(), routed.json()
    for body in (one, other):
        body.pop("request_id", None), body.pop("id", None)
        body.pop("created_at", None), body.pop("updated_at", None), body.pop("confirmed_at", None)
        body.pop("student", None)
    assert one == other


def test_a_plain_enrollment_is_answered_without_the_application(
    client: Any, session: Any, routed: list[str]
) -> None:
    paid = make_course(session, capacity=1, price="9.00")
    free = make_course(session, capacity=5)
    student, other = _bearer(session), _bearer(session)
    instructor = _bearer(session, Role.instructor)
    session.commit()
    _warm(client, student, other, instructor)
    routed.clear()

    sent_id = "rush-0001"
    made = client.post(URL, json={"course": paid.id}, headers={**student, "X-Request-ID": sent_id})
    assert made.status_code == 201, made.text
    body = made.json()
    assert (body["course"], body["status"], body["confirmed_at"]) == (paid.id, "pending", None)
    assert made.headers["location"] == f"{URL}{body['id']}/"
    assert made.headers["x-request-id"] == sent_id
    assert float(made.headers["x-response-time-ms"]) >= 0
    job = session.execute(select(OutboxJob)).scalar_one()  # the email, with the request's id
    assert (job.args, job.request_id) == ({"enrollment_id": body["id"]}, sent_id)
    # The service's refusals come back as the same problems the route renders.
    twice = client.post(URL, json={"course": paid.id}, headers=student)
    full = client.post(URL, json={"course": paid.id}, headers=other)
    missing = client.post(URL, json={"course": 10**6}, headers=other)
    teacher = client.post(URL, json={"course": free.id}, headers=instructor)
    session.commit()
    assert [r.status_code for r in (twice, full, missing, teacher)] == [409, 409, 404, 403]
    assert twice.json()["type"].endswith("/already-enrolled")
    assert full.json()["type"].endswith("/course-full")
    assert twice.json()["instance"] == URL
    assert routed == []  # none of them reached the application

    # The same requests answered by the route (an Idempotency-Key takes them there).
    def by_route(course_id: int, headers: dict[str, str], key: str) -> Any:
        return client.post(
            URL, json={"course": course_id}, headers={**headers, "Idempotency-Key": key}
        )

    fresh = _bearer(session)
    session.commit()
    _warm(client, fresh)
    routed.clear()
    _same(client.post(URL, json={"course": free.id}, headers=other), by_route(free.id, fresh, "a"))
    _same(twice, by_route(paid.id, student, "b"))
    _same(full, by_route(paid.id, fresh, "c"))
    _same(missing, by_route(10**6, fresh, "d"))
    assert routed == [f"POST {URL}"] * 4


def test_anything_not_plain_reaches_the_route_with_its_body(
    client: Any, session: Any, routed: list[str]
) -> None:
    course_id, student = _course_and_student(client, session, routed)
    as_json = {**student, "Content-Type": "application/json"}

    unknown_field = client.post(URL, json={"course": course_id, "seat": 1}, headers=student)
    assert unknown_field.status_code == 422
    assert client.post(URL, content=b'{"course": "x"}', headers=as_json).status_code == 422
    assert client.post(URL, content=b"{not json", headers=as_json).status_code == 400
    assert client.post(URL, json={"course": course_id}).status_code == 401
    bad_token = {"Authorization": "Bearer not-a-token"}
    assert client.post(URL, json={"course": course_id}, headers=bad_token).status_code == 401
    basic = {"Authorization": "Basic c3R1ZGVudDpwdw=="}
    assert client.post(URL, json={"course": course_id}, headers=basic).status_code == 401
    twice = [
        ("authorization", bad_token["Authorization"]),
        ("authorization", student["Authorization"]),
    ]
    assert client.post(URL, json={"course": course_id}, headers=twice).status_code == 401
    assert len(routed) == 7
    # A body larger than a plain enrollment's is read by the route, whole.
    padded = b'{"course": %d' % course_id + b" " * 400 + b"}"
    made = client.post(URL, content=padded, headers=as_json)
    assert made.status_code == 201 and made.json()["course"] == course_id
    # An Idempotency-Key is honoured: the second request is the first one's replay.
    other_course = make_course(session, capacity=5)
    session.commit()
    keyed = {**student, "Idempotency-Key": "enroll-once"}
    first = client.post(URL, json={"course": other_course.id}, headers=keyed)
    again = client.post(URL, json={"course": other_course.id}, headers=keyed)
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert routed == [f"POST {URL}"] * 10


def test_a_failure_behind_the_fast_path_is_a_problem_not_a_traceback(
    client: Any, session: Any, routed: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import OperationalError

    from eduflow.services import enrollments

    course_id, student = _course_and_student(client, session, routed)

    def broken(*_args: Any) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(enrollments, "enroll_in_one_statement", broken)
    failed = client.post(URL, json={"course": course_id}, headers=student)
    assert failed.status_code == 500 and "secret" not in failed.text

    def database_gone(*_args: Any) -> None:
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr(enrollments, "enroll_in_one_statement", database_gone)
    unavailable = client.post(URL, json={"course": course_id}, headers=student)
    assert unavailable.status_code == 503
    assert routed == []  # answered by the fast path, as problems (checked by the client)


def test_a_bug_before_the_enrollment_leaves_the_request_to_the_route(
    client: Any, session: Any, routed: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from eduflow.api.cached import CachedReads

    course_id, student = _course_and_student(client, session, routed)
    original = CachedReads.principal
    calls: list[str] = []

    async def fails_once(self: Any, token: str) -> Any:
        calls.append(token)
        if len(calls) == 1:
            raise RuntimeError("a bug in the fast path")
        return await original(self, token)

    monkeypatch.setattr(CachedReads, "principal", fails_once)
    made = client.post(URL, json={"course": course_id}, headers=student)
    assert made.status_code == 201 and made.json()["course"] == course_id
    assert routed == [f"POST {URL}"] and len(calls) == 2  # the route confirmed the caller
