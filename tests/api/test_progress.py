"""Progress over HTTP: the contract of the progress routes (status codes, JSON shape)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from eduflow.models import LessonProgress, OutboxJob, ProgressEvent
from eduflow.models.users import Role
from tests.factories import make_course, make_enrollment, make_lesson, make_user


def ev(lesson: int, kind: str = "completed", event_id: str | None = None, **extra: Any) -> dict:
    """One progress event of a batch."""
    return {"event_id": event_id or str(uuid.uuid4()), "lesson": lesson, "kind": kind, **extra}


@pytest.fixture
def setup(session: Any) -> dict[str, Any]:
    """A course with 3 lessons, its owner, an actively enrolled student, and an outsider."""
    owner = make_user(session, Role.instructor)
    course = make_course(session, owner=owner)
    lessons = [make_lesson(session, course) for _ in range(3)]
    student = make_user(session)
    enrollment = make_enrollment(session, student, course)
    other_course = make_course(session, owner=owner)
    foreign = make_lesson(session, other_course)
    outsider = make_user(session)
    admin = make_user(session, Role.admin)
    session.commit()
    return {
        "owner": owner.username,
        "student": student.username,
        "outsider": outsider.username,
        "admin": admin.username,
        "course": course.id,
        "lessons": [lesson.id for lesson in lessons],
        "foreign": foreign.id,
        "enrollment": enrollment.id,
    }


def _post(client: Any, headers: dict[str, str], enrollment: int, events: list[dict]) -> Any:
    return client.post(
        f"/api/v1/enrollments/{enrollment}/progress/", json={"events": events}, headers=headers
    )


def _rows(session: Any, model: Any) -> int:
    session.expire_all()
    return int(session.execute(select(func.count()).select_from(model)).scalar())


def test_batch_records_progress_and_counts_duplicates(client: Any, login: Any, setup: Any) -> None:
    headers = login(setup["student"])
    l1, l2, _ = setup["lessons"]
    first = [ev(l1, "viewed"), ev(l1), ev(l2, "viewed")]
    first.append(dict(first[0]))  # the same event twice within the batch
    response = _post(client, headers, setup["enrollment"], first)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body == {
        "enrollment": setup["enrollment"],
        "progress": {"completed_lessons": 1, "total_lessons": 3, "percent": 33},
        "completed_at": None,
        "accepted": 3,
        "duplicates": 1,
    }
    again = _post(client, headers, setup["enrollment"], [*first[:2], ev(l2, "viewed")])
    assert again.json()["accepted"] == 1 and again.json()["duplicates"] == 2
    assert again.json()["progress"]["completed_lessons"] == 1
    listed = client.get("/api/v1/enrollments/", headers=headers).json()["results"][0]
    assert listed["progress"] == {"completed_lessons": 1, "total_lessons": 3, "percent": 33}
    assert listed["completed_at"] is None


def test_foreign_lesson_is_a_422_and_nothing_is_written(
    client: Any, login: Any, setup: Any, session: Any
) -> None:
    headers = login(setup["student"])
    events = [ev(setup["lessons"][0]), ev(setup["foreign"]), ev(999_999)]
    response = _post(client, headers, setup["enrollment"], events)
    assert response.status_code == 422
    fields = [e["field"] for e in response.json()["errors"]]
    assert fields == ["events.1.lesson", "events.2.lesson"]
    assert _rows(session, LessonProgress) == 0
    assert _rows(session, ProgressEvent) == 0


def test_future_event_is_a_422(client: Any, login: Any, setup: Any, session: Any) -> None:
    headers = login(setup["student"])
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    response = _post(client, headers, setup["enrollment"], [ev(setup["lessons"][0], at=future)])
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "events.0.at"
    assert _rows(session, ProgressEvent) == 0


@pytest.mark.parametrize(
    "events",
    [
        [],
        [{"event_id": "not-a-uuid", "lesson": 1, "kind": "viewed"}],
        [{"event_id": str(uuid.uuid4()), "lesson": 1, "kind": "finished"}],
        [{"event_id": str(uuid.uuid4()), "lesson": "1", "kind": "viewed"}],
        [{"event_id": str(uuid.uuid4()), "lesson": 1, "kind": "viewed", "extra": 1}],
        [{"event_id": str(uuid.uuid4()), "lesson": 1, "kind": "viewed", "at": "2026-01-01"}],
    ],
)
def test_malformed_batches_are_422(client: Any, login: Any, setup: Any, events: Any) -> None:
    response = _post(client, login(setup["student"]), setup["enrollment"], events)
    assert response.status_code == 422


def test_too_many_events_is_a_422(client: Any, login: Any, setup: Any) -> None:
    events = [ev(setup["lessons"][0], "viewed") for _ in range(101)]
    assert _post(client, login(setup["student"]), setup["enrollment"], events).status_code == 422


def test_who_may_post(client: Any, login: Any, setup: Any, session: Any) -> None:
    events = [ev(setup["lessons"][0])]
    assert _post(client, login(setup["outsider"]), setup["enrollment"], events).status_code == 404
    assert _post(client, login(setup["owner"]), setup["enrollment"], events).status_code == 403
    assert _post(client, login(setup["admin"]), setup["enrollment"], events).status_code == 403
    assert _post(client, {}, setup["enrollment"], events).status_code == 401
    assert _post(client, login(setup["student"]), 999_999, events).status_code == 404
    assert _rows(session, ProgressEvent) == 0


@pytest.mark.parametrize("status", ["pending", "expired"])
def test_inactive_enrollment_is_a_403(client: Any, login: Any, session: Any, status: str) -> None:
    course = make_course(session, price="10.00")
    lesson = make_lesson(session, course)
    student = make_user(session)
    enrollment = make_enrollment(session, student, course, status=status)
    session.commit()
    response = _post(client, login(student.username), enrollment.id, [ev(lesson.id)])
    assert response.status_code == 403
    assert _rows(session, ProgressEvent) == 0


def test_completion_sets_completed_at_once_and_records_one_job(
    client: Any, login: Any, setup: Any, session: Any
) -> None:
    headers = login(setup["student"])
    l1, l2, l3 = setup["lessons"]
    assert (
        _post(client, headers, setup["enrollment"], [ev(l1), ev(l2)]).json()["completed_at"] is None
    )
    done = _post(client, headers, setup["enrollment"], [ev(l3), ev(l3, "viewed")]).json()
    assert done["progress"] == {"completed_lessons": 3, "total_lessons": 3, "percent": 100}
    assert done["completed_at"] is not None
    later = _post(client, headers, setup["enrollment"], [ev(l1, "viewed"), ev(l2)]).json()
    assert later["completed_at"] == done["completed_at"]
    session.expire_all()
    jobs = session.execute(select(OutboxJob.job_name, OutboxJob.args)).all()
    assert [(n, a) for n, a in jobs if n == "course_completed"] == [
        ("course_completed", {"enrollment_id": setup["enrollment"]})
    ]


def test_out_of_order_events_never_undo_a_completion(client: Any, login: Any, setup: Any) -> None:
    headers = login(setup["student"])
    l1 = setup["lessons"][0]
    now = datetime.now(UTC)
    late_view = ev(l1, "viewed", at=(now - timedelta(hours=2)).isoformat())
    completed = ev(l1, at=(now - timedelta(hours=1)).isoformat())
    _post(client, headers, setup["enrollment"], [completed])
    _post(client, headers, setup["enrollment"], [late_view])
    rows = client.get(f"/api/v1/enrollments/{setup['enrollment']}/progress/", headers=headers)
    assert rows.status_code == 200
    first = rows.json()[0]
    assert first["lesson"] == l1 and first["completed_at"] is not None
    assert [r["lesson"] for r in rows.json()] == setup["lessons"]
    assert rows.json()[1]["viewed_at"] is None and rows.json()[1]["completed_at"] is None


def test_enrollment_progress_visibility(client: Any, login: Any, setup: Any) -> None:
    path = f"/api/v1/enrollments/{setup['enrollment']}/progress/"
    for user, status in [
        ("student", 200),
        ("owner", 200),
        ("admin", 200),
        ("outsider", 404),
    ]:
        assert client.get(path, headers=login(setup[user])).status_code == status, user


def test_idempotency_key_replays_the_batch_response(client: Any, login: Any, setup: Any) -> None:
    headers = {**login(setup["student"]), "Idempotency-Key": "batch-1"}
    events = [ev(setup["lessons"][0])]
    first = _post(client, headers, setup["enrollment"], events)
    second = _post(client, headers, setup["enrollment"], events)
    assert second.status_code == 200 and second.json() == first.json()
    assert second.headers.get("idempotent-replayed") == "true"
    other = _post(client, headers, setup["enrollment"], [ev(setup["lessons"][1])])
    assert other.status_code == 422


def test_course_progress_figures_cached_and_never_stale(
    client: Any, login: Any, setup: Any, session: Any
) -> None:
    student2 = make_user(session)
    from eduflow.models import Course

    course = session.get(Course, setup["course"])
    enrollment2 = make_enrollment(session, student2, course)
    session.commit()
    owner = login(setup["owner"])
    path = f"/api/v1/courses/{setup['course']}/progress/"
    empty = client.get(path, headers=owner)
    assert empty.status_code == 200
    assert empty.json() == {
        "enrolled": 2,
        "started": 0,
        "completed": 0,
        "completion_rate": 0.0,
        "average_percent": 0.0,
        "lessons": [
            {"lesson": i, "title": empty.json()["lessons"][n]["title"], "completed": 0}
            for n, i in enumerate(setup["lessons"])
        ],
    }
    again = client.get(path, headers=owner)
    assert again.headers["x-cache"] == "hit"
    assert (
        client.get(path, headers={**owner, "If-None-Match": again.headers["etag"]}).status_code
        == 304
    )
    l1, l2, l3 = setup["lessons"]
    _post(client, login(setup["student"]), setup["enrollment"], [ev(l1), ev(l2), ev(l3)])
    _post(client, login(student2.username), enrollment2.id, [ev(l1, "viewed")])
    figures = client.get(path, headers=owner).json()
    assert figures["enrolled"] == 2 and figures["started"] == 2 and figures["completed"] == 1
    assert figures["completion_rate"] == 0.5 and figures["average_percent"] == 50.0
    assert [x["completed"] for x in figures["lessons"]] == [1, 1, 1]
    assert client.get(path, headers=login(setup["admin"])).status_code == 200
    assert client.get(path, headers=login(setup["student"])).status_code == 403
    assert client.get(path, headers=login(setup["outsider"])).status_code == 403
    assert client.get("/api/v1/courses/999999/progress/", headers=owner).status_code == 404
