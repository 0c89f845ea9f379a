"""An enrollment rush: really concurrent HTTP requests against a live server on PostgreSQL."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from eduflow.models import Course, Enrollment, OutboxJob
from eduflow.models.users import Role
from eduflow.services.auth import issue_tokens
from tests.factories import make_course, make_user

pytestmark = pytest.mark.slow


def _tokens(session: Any, count: int) -> list[str]:
    users = [make_user(session, Role.student) for _ in range(count)]
    return [issue_tokens(session, user).access for user in users]


async def _fire(url: str, requests: list[tuple[str, dict[str, Any]]]) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        return await asyncio.gather(
            *(
                client.post(url, headers={"Authorization": f"Bearer {tok}"}, json=body)
                for tok, body in requests
            )
        )


def _counts(session: Any, course_id: int) -> tuple[int, int, int]:
    session.expire_all()
    enrolled = session.execute(
        select(func.count()).select_from(Enrollment).where(Enrollment.course_id == course_id)
    ).scalar()
    jobs = session.execute(select(func.count()).select_from(OutboxJob)).scalar()
    return enrolled, session.get(Course, course_id).seats_taken, jobs


def test_capacity_holds_under_a_rush_of_300_students(session: Any, live_server: Any) -> None:
    course = make_course(session, capacity=50)
    tokens = _tokens(session, 300)
    session.commit()
    responses = asyncio.run(
        _fire(
            f"{live_server.url}/api/v1/enrollments/", [(t, {"course": course.id}) for t in tokens]
        )
    )
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 50, 409: 250}, statuses
    assert all(r.json()["type"].endswith("/course-full") for r in responses if r.status_code == 409)
    assert _counts(session, course.id) == (50, 50, 50)


def test_one_student_firing_ten_times_gets_one_enrollment(session: Any, live_server: Any) -> None:
    course = make_course(session, capacity=50)
    token = _tokens(session, 1)[0]
    session.commit()
    responses = asyncio.run(
        _fire(f"{live_server.url}/api/v1/enrollments/", [(token, {"course": course.id})] * 10)
    )
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 1, 409: 9}, statuses
    assert all(
        r.json()["type"].endswith("/already-enrolled") for r in responses if r.status_code == 409
    )
    assert _counts(session, course.id) == (1, 1, 1)


def test_mixed_rush_on_unlimited_course_counts_every_seat(session: Any, live_server: Any) -> None:
    course = make_course(session, capacity=None, price="5.00")
    tokens = _tokens(session, 60)
    session.commit()
    requests = [(t, {"course": course.id}) for t in tokens] * 2  # every student twice
    responses = asyncio.run(_fire(f"{live_server.url}/api/v1/enrollments/", requests))
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 60, 409: 60}, statuses
    assert {r.json()["status"] for r in responses if r.status_code == 201} == {"pending"}
    assert _counts(session, course.id) == (60, 60, 60)


async def _fire_deletes(url: str, requests: list[tuple[str, str]]) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        return await asyncio.gather(
            *(
                client.delete(path, headers={"Authorization": f"Bearer {tok}"})
                for tok, path in requests
            )
        )


def test_course_deletes_racing_unenrolls_never_fail(session: Any, live_server: Any) -> None:
    """Deleting courses while their students unenroll: each request is a 204 or a 404."""
    from eduflow.services.auth import issue_tokens
    from tests.factories import make_enrollment

    owner = make_user(session, Role.instructor)
    owner_token = issue_tokens(session, owner).access
    requests: list[tuple[str, str]] = []
    course_ids = []
    for _ in range(4):
        course = make_course(session, owner=owner, capacity=None)
        course_ids.append(course.id)
        for _ in range(5):
            student = make_user(session, Role.student)
            enrollment = make_enrollment(session, student, course)
            requests.append(
                (issue_tokens(session, student).access, f"/api/v1/enrollments/{enrollment.id}/")
            )
        requests.insert(len(requests) - 3, (owner_token, f"/api/v1/courses/{course.id}/"))
    session.commit()
    responses = asyncio.run(_fire_deletes(live_server.url, requests))
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {204, 404}, [r.text for r in responses if r.status_code >= 500]
    assert all(r.status_code == 204 for r in responses if "/courses/" in str(r.request.url)), (
        statuses
    )
    session.expire_all()
    assert session.execute(select(func.count()).select_from(Enrollment)).scalar() == 0
    assert all(session.get(Course, cid) is None for cid in course_ids)


# ------------------------------------------------ the same rushes through the fast path


async def _warm(url: str, tokens: list[str]) -> None:
    """Have every caller's state cached (as their login would): their enrollment POSTs
    are then plain, answered in front of the application."""
    async with httpx.AsyncClient(timeout=60) as client:
        replies = await asyncio.gather(
            *(
                client.get(f"{url}/api/v1/auth/me/", headers={"Authorization": f"Bearer {tok}"})
                for tok in tokens
            )
        )
    assert {r.status_code for r in replies} == {200}


@pytest.fixture
def routed_posts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Paths of the POSTs that reached the application behind the fast paths."""
    from fastapi import FastAPI

    seen: list[str] = []
    original = FastAPI.__call__

    async def spy(self: Any, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            seen.append(scope["path"])
        await original(self, scope, receive, send)

    monkeypatch.setattr(FastAPI, "__call__", spy)
    return seen


def test_fast_path_rush_keeps_capacity_and_one_enrollment_each(
    session: Any, live_server: Any, routed_posts: list[str]
) -> None:
    full = make_course(session, capacity=50)
    roomy = make_course(session, capacity=None)
    tokens = _tokens(session, 200)
    session.commit()
    asyncio.run(_warm(live_server.url, tokens))
    url = f"{live_server.url}/api/v1/enrollments/"
    # Every student tries the small course once and the large one twice, all at once.
    requests = [(t, {"course": full.id}) for t in tokens]
    requests += [(t, {"course": roomy.id}) for t in tokens] * 2
    responses = asyncio.run(_fire(url, requests))
    by_course: dict[int, Counter[int]] = {full.id: Counter(), roomy.id: Counter()}
    for (_tok, body), response in zip(requests, responses, strict=True):
        by_course[body["course"]][response.status_code] += 1
    assert by_course[full.id] == {201: 50, 409: 150}, by_course
    assert by_course[roomy.id] == {201: 200, 409: 200}, by_course
    assert _counts(session, full.id)[:2] == (50, 50)
    assert _counts(session, roomy.id) == (200, 200, 250)  # one email per enrollment
    # Duplicates that raced in went the transactional way inside the same call; none of
    # the POSTs needed the application.
    assert routed_posts == []
