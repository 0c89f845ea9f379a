"""Demo seeding: consistent counters, capacity, determinism, one transaction."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select, text

from eduflow.db import session_scope
from eduflow.errors import Conflict, Invalid
from eduflow.models import Course, Enrollment, Lesson, User
from eduflow.security import verify_password
from eduflow.services.demo import DEMO_PASSWORD, DemoSpec, seed_demo

SMALL = DemoSpec(courses=30, students=80, lessons_per_course=3, enrollments=400, seed=7)


def _seed(spec: DemoSpec = SMALL) -> Any:
    with session_scope() as session:
        return seed_demo(session, spec)


def _snapshot() -> list[tuple[Any, ...]]:
    with session_scope(read_only=True) as session:
        rows = session.execute(
            select(Course.title, Course.price, Course.capacity, Course.is_published).order_by(  # type: ignore[call-overload]
                Course.id
            )
        )
        return [tuple(r) for r in rows]


def test_seed_counts_and_counters_are_consistent() -> None:
    result = _seed()
    assert (result.admins, result.instructors, result.students) == (1, 2, 80)
    assert result.courses == 30 and result.lessons == 90
    assert result.enrollments == 400
    assert result.active_enrollments + result.pending_enrollments == 400
    with session_scope(read_only=True) as session:
        assert session.scalar(select(func.count()).select_from(User)) == 83
        assert session.scalar(select(func.count()).select_from(Lesson)) == 90
        assert session.scalar(select(func.count()).select_from(Enrollment)) == 400
        bad = session.execute(
            text(
                """
                SELECT c.id FROM courses c
                WHERE c.seats_taken <> (SELECT count(*) FROM enrollments e
                                        WHERE e.course_id = c.id
                                          AND e.status IN ('active', 'pending'))
                   OR c.lessons_count <> (SELECT count(*) FROM lessons l WHERE l.course_id = c.id)
                   OR (c.capacity IS NOT NULL AND c.seats_taken > c.capacity)
                """
            )
        ).all()
        assert bad == []
        # Enrollments only in published courses; pending only in paid ones.
        wrong = session.execute(
            text(
                """
                SELECT e.id FROM enrollments e JOIN courses c ON c.id = e.course_id
                WHERE NOT c.is_published OR (e.status = 'pending' AND c.price = 0)
                """
            )
        ).all()
        assert wrong == []
        statuses = set(session.scalars(select(Enrollment.status).distinct()))  # type: ignore[call-overload]
        assert statuses == {"active", "pending"}
        published = set(session.scalars(select(Course.is_published).distinct()))  # type: ignore[call-overload]
        assert published == {True, False}
        hashes = set(session.scalars(select(User.password_hash).distinct()))  # type: ignore[call-overload]
    assert len(hashes) == 1  # one shared hash, not 83 bcrypt runs
    assert verify_password(DEMO_PASSWORD, hashes.pop())


def test_same_seed_gives_same_data_and_other_seed_differs() -> None:
    _seed()
    first = _snapshot()
    with session_scope() as session:
        session.execute(
            text("TRUNCATE users, courses, lessons, enrollments RESTART IDENTITY CASCADE")
        )
    _seed()
    assert _snapshot() == first
    with session_scope() as session:
        session.execute(
            text("TRUNCATE users, courses, lessons, enrollments RESTART IDENTITY CASCADE")
        )
    _seed(DemoSpec(courses=30, students=80, lessons_per_course=3, enrollments=400, seed=8))
    assert _snapshot() != first


def test_enrollments_are_capped_by_what_capacities_and_students_allow() -> None:
    result = _seed(DemoSpec(courses=3, students=2, lessons_per_course=0, enrollments=1000, seed=1))
    with session_scope(read_only=True) as session:
        max_possible = sum(
            min(c.capacity or 2, 2) for c in session.scalars(select(Course)) if c.is_published
        )
    assert result.enrollments == max_possible <= 6


def test_seeding_twice_is_refused_and_writes_nothing() -> None:
    _seed()
    with pytest.raises(Conflict, match="already present"):
        _seed(DemoSpec(courses=5, students=5, enrollments=5, seed=99))
    with session_scope(read_only=True) as session:
        assert session.scalar(select(func.count()).select_from(Course)) == 30


@pytest.mark.parametrize("field", ["courses", "students", "enrollments", "lessons_per_course"])
def test_negative_sizes_are_invalid(field: str) -> None:
    with pytest.raises(Invalid) as info:
        _seed(DemoSpec(**{field: -1}))  # type: ignore[arg-type]
    assert info.value.errors == [{"field": field, "message": info.value.errors[0]["message"]}]


def test_courses_without_instructors_are_invalid() -> None:
    with pytest.raises(Invalid, match="instructor"):
        _seed(DemoSpec(courses=3, instructors=0))


def test_seed_works_on_the_embedded_sqlite_default(sqlite_url: str) -> None:
    from eduflow import schema

    schema.upgrade("head")
    result = _seed()
    assert result.enrollments == 400
    with session_scope(read_only=True) as session:
        assert session.scalar(select(func.sum(Course.seats_taken))) == 400
        assert session.scalar(select(func.sum(Course.lessons_count))) == 90


def test_two_concurrent_seeds_give_one_data_set() -> None:
    import threading

    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def run() -> None:
        barrier.wait()
        try:
            _seed()
            outcomes.append("seeded")
        except Conflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["conflict", "seeded"]
    with session_scope(read_only=True) as session:
        assert session.scalar(select(func.count()).select_from(Course)) == 30
        assert session.scalar(select(func.count()).select_from(Enrollment)) == 400


def test_seeded_progress_agrees_with_a_recompute() -> None:
    from eduflow.models import LessonProgress
    from eduflow.services.progress_recompute import recompute

    result = _seed()
    assert result.progress_rows > 0 and 0 < result.completed_enrollments < result.enrollments
    with session_scope(read_only=True) as session:
        assert session.scalar(select(func.count()).select_from(LessonProgress)) == (
            result.progress_rows
        )
        assert recompute(session).differences == []
        finished = session.scalar(
            select(func.count()).select_from(Enrollment).where(Enrollment.completed_at.is_not(None))  # type: ignore[union-attr]
        )
        assert finished == result.completed_enrollments
        # Only active enrollments have progress, and only lessons of their own course.
        strays = session.execute(
            text(
                """
                SELECT p.enrollment_id FROM lesson_progress p
                JOIN enrollments e ON e.id = p.enrollment_id
                JOIN lessons l ON l.id = p.lesson_id
                WHERE e.status <> 'active' OR l.course_id <> e.course_id
                   OR p.viewed_at < e.created_at OR p.completed_at < p.viewed_at
                """
            )
        ).all()
        assert strays == []


def _progress_rows() -> list[tuple[Any, ...]]:
    """The seeded progress, ids counted from the first enrollment and lesson."""
    with session_scope(read_only=True) as session:
        rows = session.execute(
            text(
                """
                SELECT p.enrollment_id - (SELECT min(id) FROM enrollments),
                       p.lesson_id - (SELECT min(id) FROM lessons), p.viewed_at, p.completed_at
                FROM lesson_progress p ORDER BY p.enrollment_id, p.lesson_id
                """
            )
        ).all()
    return [(e, lesson, _utc(viewed), _utc(done)) for e, lesson, viewed, done in rows]


def _utc(moment: Any) -> Any:
    """A timestamp as an aware UTC datetime (SQLite hands back text from raw SQL)."""
    from datetime import UTC, datetime

    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment if moment is None or moment.tzinfo else moment.replace(tzinfo=UTC)


def test_both_databases_get_the_same_progress(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    # PostgreSQL loads the spool as binary COPY data, SQLite decodes it into rows: the
    # same seed gives the same progress rows either way.
    from eduflow import schema
    from tests.conftest import reset_process_state

    _seed()
    on_postgres = _progress_rows()
    assert len(on_postgres) > 100 and any(row[3] is None for row in on_postgres)
    monkeypatch.setenv("EDUFLOW_DATABASE_URL", f"sqlite:///{tmp_path / 'demo.db'}")
    reset_process_state()
    try:
        schema.upgrade("head")
        _seed()
        assert _progress_rows() == on_postgres
    finally:
        monkeypatch.undo()
        reset_process_state()


def test_the_vacuum_after_a_seed_gives_its_connection_back_with_the_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # VACUUM lifts the session's statement_timeout (no transaction to SET LOCAL in): the
    # pooled connection must not keep that for whoever uses it next.
    from eduflow.db import autocommit_connection
    from eduflow.services.demo import tidy_after_seed
    from tests.conftest import reset_process_state

    monkeypatch.setenv("EDUFLOW_DB_POOL_SIZE", "1")
    monkeypatch.setenv("EDUFLOW_DB_MAX_OVERFLOW", "0")
    reset_process_state()
    try:
        tidy_after_seed()
        with autocommit_connection() as connection:
            setting = connection.execute(text("SHOW statement_timeout")).scalar_one()
        assert setting != "0"
    finally:
        monkeypatch.undo()
        reset_process_state()
