"""The fast paths answer exactly what the routes answer, field by field, for a table of
requests: credentials valid, invalid, repeated, empty, of another scheme, expired and
revoked; drafts for their owner, another instructor, an admin, a student and anonymous;
problem bodies included. Each request is answered once with the fast paths and once by
the routes alone (``app.cached_reads = None``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI

from eduflow.models.users import Role
from eduflow.security import encode_token
from tests.factories import DEFAULT_PASSWORD, make_course, make_enrollment, make_lesson, make_user

HeaderList = list[tuple[str, str]]


@pytest.fixture
def routed(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The ``METHOD path`` of every request that reached the application."""
    seen: list[str] = []
    original = FastAPI.__call__

    async def spy(self: Any, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            seen.append(f"{scope['method']} {scope['path']}")
        await original(self, scope, receive, send)

    monkeypatch.setattr(FastAPI, "__call__", spy)
    yield seen


_COMPARED_HEADERS = ("content-type", "etag", "vary", "www-authenticate", "cache-control")
_OWN_FIELDS = ("request_id", "id", "created_at", "updated_at", "confirmed_at")


def _seen(response: Any, drop: tuple[str, ...] = ("request_id",)) -> tuple[Any, ...]:
    """What a client sees of an answer, but for the request's own id (and ``drop``)."""
    headers = tuple(response.headers.get(name) for name in _COMPARED_HEADERS)
    body: Any = response.json() if response.content else None
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k not in drop}
    assert response.headers["x-request-id"] and response.headers["x-response-time-ms"]
    return response.status_code, headers, body


def _routes_alone(app: Any, call: Any, *args: Any, **kwargs: Any) -> Any:
    fast, app.cached_reads = app.cached_reads, None
    try:
        return call(*args, **kwargs)
    finally:
        app.cached_reads = fast


_ROLES = {
    "student": Role.student,
    "owner": Role.instructor,
    "instructor": Role.instructor,
    "admin": Role.admin,
}


def _callers(client: Any, session: Any, login: Any) -> tuple[dict[str, HeaderList], Any]:
    """Every kind of ``Authorization`` header of the table (the valid ones cached by a
    login), and the instructor called ``owner``."""
    users = {
        name: make_user(session, role, username=f"parity_{name}") for name, role in _ROLES.items()
    }
    session.commit()
    bearer = {name: login(f"parity_{name}")["Authorization"] for name in users}
    revoked = client.post(
        "/api/v1/auth/login/", json={"username": "parity_student", "password": DEFAULT_PASSWORD}
    )
    assert revoked.status_code == 200, revoked.text
    tokens = revoked.json()
    assert client.post("/api/v1/auth/logout/", json={"refresh": tokens["refresh"]}).status_code
    expired, _ = encode_token(users["student"].id, "access", "sid", -10, role="student")
    return {
        "anonymous": [],
        **{name: [("authorization", value)] for name, value in bearer.items()},
        "invalid": [("authorization", "Bearer not-a-token")],
        "invalid then valid": [
            ("authorization", "Bearer not-a-token"),
            ("authorization", bearer["student"]),
        ],
        "valid then invalid": [
            ("authorization", bearer["student"]),
            ("authorization", "Bearer not-a-token"),
        ],
        "valid twice": [("authorization", bearer["admin"]), ("authorization", bearer["admin"])],
        "empty": [("authorization", "")],
        "scheme only": [("authorization", "Bearer ")],
        "basic": [("authorization", "Basic cGFyaXR5OnB3")],
        "expired": [("authorization", f"Bearer {expired}")],
        "revoked": [("authorization", f"Bearer {tokens['access']}")],
    }, users["owner"]


def test_cached_reads_answer_what_the_routes_answer(
    app: Any, client: Any, session: Any, login: Any, routed: list[str]
) -> None:
    callers, owner = _callers(client, session, login)
    published = make_course(session, owner=owner)
    draft = make_course(session, owner=owner, is_published=False)
    for course in (published, draft):
        make_lesson(session, course)
    session.commit()
    paths = [
        "/api/v1/courses/",
        f"/api/v1/courses/{published.id}/",
        f"/api/v1/courses/{draft.id}/",
        f"/api/v1/lessons/?course={published.id}",
        f"/api/v1/lessons/?course={draft.id}",
        "/api/v1/auth/me/",
    ]
    answered_in_front = 0
    for path in paths:
        for label, headers in callers.items():
            by_routes = _routes_alone(app, client.get, path, headers=headers)
            client.get(path, headers=headers)  # the cache now holds what may be held
            routed.clear()
            fast = client.get(path, headers=headers)
            answered_in_front += not routed
            assert _seen(fast) == _seen(by_routes), (path, label)
            etag = fast.headers.get("etag")
            if etag:  # a revalidation too
                revalidated = [*headers, ("if-none-match", etag)]
                again = client.get(path, headers=revalidated)
                alone = _routes_alone(app, client.get, path, headers=revalidated)
                assert again.status_code == alone.status_code == 304, (path, label)
    # The table reaches the fast path: every valid caller's hit is answered in front.
    assert answered_in_front >= 20


def test_enrollment_posts_answer_what_the_route_answers(
    app: Any, client: Any, session: Any, login: Any
) -> None:
    callers, _ = _callers(client, session, login)
    full = make_course(session, capacity=1)
    make_enrollment(session, make_user(session), full)
    draft = make_course(session, is_published=False)
    session.commit()
    url = "/api/v1/enrollments/"
    bodies = {"full": {"course": full.id}, "draft": {"course": draft.id}, "missing": {"course": 0}}
    for label, headers in callers.items():
        for what, body in bodies.items():
            by_route = _routes_alone(app, client.post, url, json=body, headers=headers)
            fast = client.post(url, json=body, headers=headers)
            assert _seen(fast) == _seen(by_route), (label, what)
    # A real enrollment each way, for the same student: the second one is a duplicate.
    for way in ("fast", "route"):
        course = make_course(session, capacity=3, price="4.00")
        session.commit()
        headers = callers["student"]
        args = (client.post, url)
        kwargs = {"json": {"course": course.id}, "headers": headers}
        first = client.post(url, **kwargs) if way == "fast" else _routes_alone(app, *args, **kwargs)
        again = _routes_alone(app, *args, **kwargs) if way == "fast" else client.post(url, **kwargs)
        assert first.status_code == 201 and again.status_code == 409, way
        made = first.json()
        assert (made["status"], made["course"], made["student"]) == (
            "pending",
            course.id,
            "parity_student",
        )
        assert first.headers["location"] == f"{url}{made['id']}/"
        if way == "fast":
            fast_made, fast_dup = _seen(first, _OWN_FIELDS), _seen(again)
        else:
            made_route = _seen(first, _OWN_FIELDS)
            for one, other in ((fast_made, made_route), (fast_dup, _seen(again))):
                assert one[0] == other[0] and one[1] == other[1]
                if isinstance(one[2], dict) and "course" in one[2]:
                    one[2].pop("course"), other[2].pop("course")
                    one[2].pop("course_title"), other[2].pop("course_title")
                if isinstance(one[2], dict) and "detail" in one[2]:
                    one[2].pop("detail"), other[2].pop("detail")  # names the course id
                assert one[2] == other[2]


def test_progress_posts_answer_what_the_route_answers(
    app: Any, client: Any, session: Any, login: Any, routed: list[str]
) -> None:
    import uuid
    from datetime import UTC, datetime, timedelta

    from sqlmodel import select

    from eduflow.models.users import User

    callers, owner = _callers(client, session, login)
    parity_student = session.exec(select(User).where(User.username == "parity_student")).one()
    course = make_course(session, owner=owner)
    lessons = [make_lesson(session, course).id for _ in range(3)]
    foreign = make_lesson(session, make_course(session, owner=owner)).id
    # Two active enrollments of the student in twin courses: each way records on its own.
    twin = make_course(session, owner=owner)
    twin_lessons = [make_lesson(session, twin).id for _ in range(3)]
    mine = make_enrollment(session, parity_student, course).id
    mine_twin = make_enrollment(session, parity_student, twin).id
    pending = make_enrollment(
        session, parity_student, make_course(session, owner=owner), status="pending"
    ).id
    others = make_enrollment(session, make_user(session), course).id
    session.commit()

    def events(lesson_ids: list[int], **extra: Any) -> dict[str, Any]:
        return {
            "events": [
                {"event_id": str(uuid.uuid4()), "lesson": lesson, "kind": "completed", **extra}
                for lesson in lesson_ids
            ]
        }

    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    table = {
        "foreign lesson": (mine, lambda: events([lessons[0], foreign])),
        "in the future": (mine, lambda: events([lessons[0]], at=future)),
        "someone else's": (others, lambda: events([lessons[0]])),
        "pending": (pending, lambda: events([lessons[0]])),
        "missing": (2**31 - 1, lambda: events([lessons[0]])),
        "id out of range": (2**31, lambda: events([lessons[0]])),
        "not a batch": (mine, lambda: {"events": [{"lesson": lessons[0]}]}),
        "empty batch": (mine, lambda: {"events": []}),
    }
    for label, headers in callers.items():
        for what, (enrollment, body) in table.items():
            url = f"/api/v1/enrollments/{enrollment}/progress/"
            by_route = _routes_alone(app, client.post, url, json=body(), headers=headers)
            fast = client.post(url, json=body(), headers=headers)
            assert _seen(fast) == _seen(by_route), (label, what)
    # Real batches, the same shape each way on twin enrollments: the same answers, and the
    # valid caller's plain batches never reach the application.
    headers = callers["student"]
    for step in (lessons[:2], lessons[2:]):
        twin_step = [twin_lessons[lessons.index(lesson)] for lesson in step]
        by_route = _routes_alone(
            app,
            client.post,
            f"/api/v1/enrollments/{mine_twin}/progress/",
            json=events(twin_step),
            headers=headers,
        )
        routed.clear()
        fast = client.post(
            f"/api/v1/enrollments/{mine}/progress/", json=events(step), headers=headers
        )
        assert routed == []
        assert _seen(fast, ("request_id", "enrollment", "completed_at")) == _seen(
            by_route, ("request_id", "enrollment", "completed_at")
        )
        assert fast.json()["enrollment"] == mine
    assert fast.json()["completed_at"] is not None  # the last step completed the course
    assert by_route.json()["completed_at"] is not None
    # A key to honour goes to the route.
    routed.clear()
    keyed = client.post(
        f"/api/v1/enrollments/{mine}/progress/",
        json=events(lessons[:1]),
        headers={**dict(headers), "Idempotency-Key": "parity-1"},
    )
    assert keyed.status_code == 200 and routed == [f"POST /api/v1/enrollments/{mine}/progress/"]
