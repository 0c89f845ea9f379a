"""Lock order under real concurrency on PostgreSQL: every write that touches a course's
enrollments or lessons locks the course row first, so a course deletion racing an unenroll,
a confirm, an enrollment or the expiry job waits instead of deadlocking, and two writes of
one lesson run one after the other.

Each test holds the course lock in one transaction (as ``delete_course`` does), starts the
competing write in a thread, waits until PostgreSQL reports it blocked on a lock, then lets
the deletion finish. With the opposite lock order PostgreSQL detects a deadlock instead.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from eduflow.db import session_scope
from eduflow.errors import NotFound
from eduflow.models import Course, Enrollment, Lesson
from eduflow.models._base import utcnow
from eduflow.models.users import Role
from eduflow.services import courses, enrollments, lessons
from eduflow.services.permissions import OPERATOR, Principal
from tests.factories import make_course, make_enrollment, make_lesson, make_user
from tests.queries import wait_until_a_lock_is_awaited


def as_principal(user: Any) -> Principal:
    return Principal(id=user.id, username=user.username, role=Role(user.role))


def _race_with_course_delete(course_id: int, write: Callable[[Any], Any]) -> list[Any]:
    """Hold the course lock, run ``write`` in its own transaction in a thread, then delete
    the course; returns what ``write`` returned or raised."""
    outcome: list[Any] = []

    def competitor() -> None:
        try:
            with session_scope() as s:
                outcome.append(write(s))
        except Exception as exc:  # recorded for the assertions below
            outcome.append(exc)

    with session_scope() as s:
        courses.get_course_for_change(s, OPERATOR, course_id)  # the lock delete_course takes
        thread = threading.Thread(target=competitor)
        thread.start()
        wait_until_a_lock_is_awaited()
        courses.delete_course(s, OPERATOR, course_id)
    thread.join(timeout=30)
    assert not thread.is_alive()
    return outcome


def _course_gone(course_id: int) -> None:
    with session_scope(read_only=True) as s:
        assert s.get(Course, course_id) is None
        left = s.execute(
            select(func.count()).select_from(Enrollment).where(Enrollment.course_id == course_id)
        ).scalar()
        assert left == 0


def test_unenroll_racing_a_course_delete_waits_then_404(session: Any) -> None:
    course = make_course(session, capacity=5)
    student = make_user(session)
    enrollment = make_enrollment(session, student, course)
    session.commit()

    outcome = _race_with_course_delete(
        course.id,
        lambda s: enrollments.cancel_enrollment(s, as_principal(student), enrollment.id),
    )
    assert len(outcome) == 1 and isinstance(outcome[0], NotFound), outcome
    _course_gone(course.id)


def test_confirm_racing_a_course_delete_waits_then_404(session: Any) -> None:
    course = make_course(session, price="10.00")
    enrollment = make_enrollment(session, make_user(session), course, status="pending")
    session.commit()

    outcome = _race_with_course_delete(
        course.id, lambda s: enrollments.confirm_enrollment(s, OPERATOR, enrollment.id)
    )
    assert len(outcome) == 1 and isinstance(outcome[0], NotFound), outcome
    _course_gone(course.id)


def test_enroll_racing_a_course_delete_is_404_not_course_full(session: Any) -> None:
    course = make_course(session, capacity=5)
    student = make_user(session)
    session.commit()

    outcome = _race_with_course_delete(
        course.id, lambda s: enrollments.enroll_student(s, as_principal(student), course.id)
    )
    assert len(outcome) == 1 and isinstance(outcome[0], NotFound), outcome
    _course_gone(course.id)


def test_expiry_racing_a_course_delete_waits_and_expires_the_rest(session: Any) -> None:
    doomed = make_course(session, price="10.00")
    other = make_course(session, price="10.00")
    old = utcnow() - timedelta(days=2)
    for course in (doomed, other):
        make_enrollment(session, make_user(session), course, status="pending", created_at=old)
    session.commit()

    outcome = _race_with_course_delete(
        doomed.id,
        lambda s: enrollments.expire_abandoned_enrollments(s, timedelta(hours=24)),
    )
    assert outcome == [1], outcome  # only the surviving course's enrollment was left
    _course_gone(doomed.id)
    with session_scope(read_only=True) as s:
        assert s.get(Course, other.id).seats_taken == 0
        statuses = s.execute(select(Enrollment.status)).scalars().all()
        assert statuses == ["expired"]


def test_unenroll_and_delete_fired_together_never_fail(session: Any) -> None:
    """Really concurrent transactions with no forced order: every outcome is a clean one."""
    rounds = 3
    owner = make_user(session, Role.instructor)
    plan: list[tuple[int, list[tuple[Any, int]]]] = []
    for _ in range(rounds):
        course = make_course(session, owner=owner, capacity=None)
        students = [make_user(session) for _ in range(4)]
        plan.append((course.id, [(s, make_enrollment(session, s, course).id) for s in students]))
    session.commit()

    errors: list[BaseException] = []
    start = threading.Barrier(5 * rounds)

    def run(fn: Callable[[Any], Any]) -> None:
        start.wait()
        try:
            with session_scope() as s:
                fn(s)
        except NotFound:
            pass
        except BaseException as exc:  # anything else is the bug under test
            errors.append(exc)

    threads = []
    for course_id, pairs in plan:
        threads.append(
            threading.Thread(
                target=run,
                args=(lambda s, c=course_id: courses.delete_course(s, OPERATOR, c),),
            )
        )
        for student, enrollment_id in pairs:
            threads.append(
                threading.Thread(
                    target=run,
                    args=(
                        lambda s, p=as_principal(student), e=enrollment_id: (
                            enrollments.cancel_enrollment(s, p, e)
                        ),
                    ),
                )
            )
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    for course_id, _ in plan:
        _course_gone(course_id)


def _race_on_course_lock(
    course_id: int, first: Callable[[Any], Any], second: Callable[[Any], Any]
) -> list[Any]:
    """Hold the course lock, start ``second`` in a thread, run ``first`` and commit."""
    outcome: list[Any] = []

    def competitor() -> None:
        try:
            with session_scope() as s:
                outcome.append(second(s))
        except Exception as exc:  # recorded for the assertions below
            outcome.append(exc)

    with session_scope() as s:
        courses.get_course_for_change(s, OPERATOR, course_id)
        thread = threading.Thread(target=competitor)
        thread.start()
        wait_until_a_lock_is_awaited()
        first(s)
    thread.join(timeout=30)
    assert not thread.is_alive()
    return outcome


def _lessons_count(course_id: int) -> tuple[int, int]:
    with session_scope(read_only=True) as s:
        course = s.get(Course, course_id)
        rows = s.execute(
            select(func.count()).select_from(Lesson).where(Lesson.course_id == course_id)
        ).scalar()
        return course.lessons_count, int(rows or 0)


def test_two_deletes_of_one_lesson_give_one_204_and_one_404(session: Any) -> None:
    course = make_course(session)
    lesson = make_lesson(session, course)
    make_lesson(session, course)
    session.commit()

    outcome = _race_on_course_lock(
        course.id,
        lambda s: lessons.delete_lesson(s, OPERATOR, lesson.id),
        lambda s: lessons.delete_lesson(s, OPERATOR, lesson.id),
    )
    assert len(outcome) == 1 and isinstance(outcome[0], NotFound), outcome
    assert _lessons_count(course.id) == (1, 1)


def test_editing_a_lesson_deleted_meanwhile_is_404(session: Any) -> None:
    course = make_course(session)
    lesson = make_lesson(session, course)
    session.commit()

    outcome = _race_on_course_lock(
        course.id,
        lambda s: lessons.delete_lesson(s, OPERATOR, lesson.id),
        lambda s: lessons.update_lesson(s, OPERATOR, lesson.id, {"title": "Renamed"}),
    )
    assert len(outcome) == 1 and isinstance(outcome[0], NotFound), outcome
    assert _lessons_count(course.id) == (0, 0)
