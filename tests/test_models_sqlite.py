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
