"""Progress rules at the service level: on PostgreSQL and on the embedded SQLite."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select

from eduflow.db import session_scope
from eduflow.models import Course, Enrollment, LessonProgress, OutboxJob, ProgressEvent
from eduflow.models.users import Role
from eduflow.services import lessons as lesson_service
from eduflow.services import progress
from eduflow.services.permissions import Principal
from tests.factories import make_course, make_enrollment, make_lesson, make_user
from tests.queries import counted_queries


def _principal(user: Any) -> Principal:
    return Principal(id=user.id, username=user.username, role=Role(user.role))


def _events(*pairs: tuple[int, str]) -> dict[str, Any]:
    return {
        "events": [
            {"event_id": str(uuid.uuid4()), "lesson": lesson, "kind": kind}
            for lesson, kind in pairs
        ]
    }


def _world(lessons: int = 3) -> dict[str, Any]:
    with session_scope() as s:
        owner = make_user(s, Role.instructor)
        course = make_course(s, owner=owner)
        lesson_ids = [make_lesson(s, course).id for _ in range(lessons)]
        student = make_user(s)
        enrollment = make_enrollment(s, student, course)
        return {
            "owner": _principal(owner),
            "student": _principal(student),
            "course": course.id,
            "lessons": lesson_ids,
            "enrollment": enrollment.id,
        }


def _record(world: dict[str, Any], *pairs: tuple[int, str]) -> Any:
    with session_scope() as s:
        return progress.record_progress(s, world["student"], world["enrollment"], _events(*pairs))


def _completion_jobs() -> int:
    with session_scope() as s:
        return int(
            s.execute(
                select(func.count())
                .select_from(OutboxJob)
                .where(OutboxJob.job_name == "course_completed")
            ).scalar()
        )


def test_completion_once_and_forward_only(database: str) -> None:
    world = _world()
    l1, l2, l3 = world["lessons"]
    first = _record(world, (l1, "completed"), (l2, "viewed"))
    assert (first.progress.completed_lessons, first.progress.percent) == (1, 33)
    assert _record(world, (l1, "viewed"), (l2, "viewed")).progress.completed_lessons == 1
    done = _record(world, (l2, "completed"), (l3, "completed"))
    assert done.completed_at is not None and done.progress.percent == 100
    after = _record(world, (l3, "completed"), (l1, "viewed"))
    assert after.completed_at == done.completed_at and after.accepted == 2
    assert _completion_jobs() == 1


def test_events_that_change_nothing_write_no_rows(database: str) -> None:
    world = _world()
    l1 = world["lessons"][0]
    batch = _events((l1, "viewed"), (l1, "completed"))
    with session_scope() as s:
        progress.record_progress(s, world["student"], world["enrollment"], batch)
    with session_scope() as s:
        events_before = s.execute(select(func.count()).select_from(ProgressEvent)).scalar()
    with counted_queries() as statements, session_scope() as s:
        resent = progress.record_progress(s, world["student"], world["enrollment"], batch)
        again = progress.record_progress(
            s, world["student"], world["enrollment"], _events((l1, "viewed"), (l1, "completed"))
        )
    assert (resent.accepted, resent.duplicates) == (0, 2)
    assert (again.accepted, again.duplicates) == (2, 0)
    writes = [
        q for q in statements if q.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
    ]
    assert writes == []
    with session_scope() as s:
        assert s.execute(select(func.count()).select_from(ProgressEvent)).scalar() == events_before


def test_adding_a_lesson_keeps_completed_at(database: str) -> None:
    world = _world(lessons=2)
    l1, l2 = world["lessons"]
    done = _record(world, (l1, "completed"), (l2, "completed"))
    assert done.completed_at is not None
    with session_scope() as s:
        lesson_service.create_lesson(
            s, world["owner"], {"course": world["course"], "title": "Bonus lesson"}
        )
    with session_scope() as s:
        enrollment = s.get(Enrollment, world["enrollment"])
        assert enrollment.completed_at == done.completed_at
        assert enrollment.completed_lessons == 2
        assert s.get(Course, world["course"]).lessons_count == 3
    from eduflow.services.enrollments import get_enrollment

    with session_scope() as s:
        shown = get_enrollment(s, world["student"], world["enrollment"])
    assert (shown.progress.percent, shown.completed_at) == (66, done.completed_at)


def test_deleting_a_lesson_fixes_counters_and_may_complete(database: str) -> None:
    world = _world(lessons=3)
    l1, l2, l3 = world["lessons"]
    _record(world, (l1, "completed"), (l2, "completed"), (l3, "viewed"))
    with session_scope() as s:
        other_student = make_user(s)
        course = s.get(Course, world["course"])
        other = make_enrollment(s, other_student, course)
        other_id, other_principal = other.id, _principal(other_student)
    with session_scope() as s:
        progress.record_progress(s, other_principal, other_id, _events((l1, "completed")))
    with session_scope() as s:  # l1 goes: both lose a completion; the first has l2 of l2, l3
        lesson_service.delete_lesson(s, world["owner"], l1)
    with session_scope() as s:
        first = s.get(Enrollment, world["enrollment"])
        second = s.get(Enrollment, other_id)
        assert (first.completed_lessons, second.completed_lessons) == (1, 0)
        assert first.completed_at is None and second.completed_at is None
        left = s.execute(select(LessonProgress.lesson_id)).scalars().all()
        assert l1 not in left
    with session_scope() as s:  # l3 goes: the first has completed every remaining lesson
        lesson_service.delete_lesson(s, world["owner"], l3)
    with session_scope() as s:
        first = s.get(Enrollment, world["enrollment"])
        assert (first.completed_lessons, first.completed_at is not None) == (1, True)
    assert _completion_jobs() == 1


def test_batch_of_100_events_is_a_constant_number_of_statements() -> None:
    world = _world(lessons=50)
    lessons = world["lessons"]
    small = _events((lessons[0], "viewed"))
    big = _events(*[(lesson, kind) for lesson in lessons for kind in ("viewed", "completed")])
    assert len(big["events"]) == 100
    counts = []
    for batch in (small, big):
        with counted_queries() as statements, session_scope() as s:
            progress.record_progress(s, world["student"], world["enrollment"], batch)
        counts.append(len(statements))
    assert counts[1] <= 6  # lock+read, read, events, rows, counters, outbox
    assert counts[1] - counts[0] <= 2  # the counter update and the outbox row


def test_enrollment_list_of_20_rows_is_two_queries(client: Any, login: Any) -> None:
    with session_scope() as s:
        owner = make_user(s, Role.instructor)
        courses = []
        for _ in range(20):
            course = make_course(s, owner=owner)
            make_lesson(s, course)
            courses.append(course)
        student = make_user(s)
        for course in courses:
            make_enrollment(s, student, course)
        username = student.username
    headers = login(username)
    with counted_queries() as statements:
        body = client.get("/api/v1/enrollments/", headers=headers).json()
    assert len(body["results"]) == 20
    assert all(r["progress"]["total_lessons"] == 1 for r in body["results"])
    assert len(statements) <= 2, statements
