"""The embedded default (SQLite) enforces the same constraints as PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError

from eduflow import schema
from eduflow.db import session_scope
from eduflow.models import Enrollment
from tests.factories import make_course, make_enrollment, make_user


@pytest.fixture
def sqlite_db(sqlite_url: str) -> str:
    schema.upgrade("head")
    return sqlite_url


def test_duplicate_enrollment_rejected_on_sqlite(sqlite_db: str) -> None:
    with session_scope() as s:
        student = make_user(s)
        course = make_course(s)
        make_enrollment(s, student, course)
        ids = (student.id, course.id)
    with pytest.raises(IntegrityError), session_scope() as s:
        s.add(Enrollment(student_id=ids[0], course_id=ids[1]))
        s.flush()


def test_check_constraints_and_foreign_keys_on_sqlite(sqlite_db: str) -> None:
    with pytest.raises(IntegrityError), session_scope() as s:
        make_course(s, price="-1")
    with pytest.raises(IntegrityError), session_scope() as s:
        make_course(s, capacity=0)
    with pytest.raises(IntegrityError), session_scope() as s:  # foreign keys are on
        s.add(Enrollment(student_id=999, course_id=999))
        s.flush()


def test_course_delete_cascades_on_postgres() -> None:
    with session_scope() as s:
        course = make_course(s)
        make_enrollment(s, make_user(s), course)
        course_id = course.id
    with session_scope() as s:
        from eduflow.models import Course

        s.delete(s.get(Course, course_id))
    with session_scope() as s:
        from sqlmodel import select

        assert s.exec(select(Enrollment)).all() == []


def test_timestamps_read_back_as_utc_on_sqlite(sqlite_db: str) -> None:
    from eduflow.models import User

    with session_scope() as s:
        user_id = make_user(s).id
    with session_scope() as s:
        joined = s.get(User, user_id).date_joined  # type: ignore[union-attr]
    assert joined.tzinfo is not None and joined.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


def _record_a_course() -> list[tuple[object, ...]]:
    """Record the same event story on the current database: duplicates within and across
    batches, a completion before its view, a resent batch; what was answered and stored."""
    import uuid

    from sqlmodel import select

    from eduflow.models import LessonProgress, ProgressEvent
    from eduflow.services.permissions import Principal
    from eduflow.services.progress import record_progress

    with session_scope() as s:
        student = make_user(s)
        course = make_course(s)
        from tests.factories import make_lesson

        lessons = [make_lesson(s, course).id for _ in range(3)]
        enrollment = make_enrollment(s, student, course).id
        actor = Principal(id=student.id, username=student.username, role=student.role)
    ids = [str(uuid.uuid4()) for _ in range(5)]
    story = [
        [
            (ids[0], lessons[0], "viewed"),
            (ids[0], lessons[0], "viewed"),
            (ids[1], lessons[1], "completed"),
        ],
        [
            (ids[0], lessons[0], "viewed"),
            (ids[2], lessons[0], "completed"),
            (ids[3], lessons[1], "viewed"),
        ],
        [(ids[4], lessons[2], "completed")],
        [(ids[4], lessons[2], "completed")],
    ]
    answers: list[tuple[object, ...]] = []
    for batch in story:
        events = [{"event_id": e, "lesson": lesson, "kind": k} for e, lesson, k in batch]
        with session_scope() as s:
            result = record_progress(s, actor, enrollment, {"events": events})
        answers.append(
            (result.accepted, result.duplicates, result.progress, result.completed_at is not None)
        )
    with session_scope() as s:
        rows = s.exec(select(LessonProgress).where(LessonProgress.enrollment_id == enrollment))
        stored = sorted((lessons.index(r.lesson_id), r.completed_at is not None) for r in rows)
        recorded = s.exec(select(ProgressEvent).where(ProgressEvent.enrollment_id == enrollment))
        answers.append((tuple(stored), len(recorded.all())))
    return answers


def test_progress_is_recorded_alike_on_sqlite_and_postgres(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    schema.upgrade("head")
    on_sqlite = _record_a_course()
    from tests.conftest import TEST_DATABASE_URL, reset_process_state

    monkeypatch.setenv("EDUFLOW_DATABASE_URL", TEST_DATABASE_URL)
    reset_process_state()
    on_postgres = _record_a_course()
    assert on_sqlite == on_postgres
    # The story itself: a duplicate within a batch and a resent one count as duplicates,
    # the last lesson completes the course once, rows only for lessons that changed.
    assert on_sqlite[0][:2] == (2, 1) and on_sqlite[1][:2] == (2, 1)
    assert on_sqlite[2][3] is True and on_sqlite[3][:2] == (0, 1)
    assert on_sqlite[4] == (((0, True), (1, True), (2, True)), 4)
