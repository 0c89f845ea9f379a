"""Enrollment rules at the service level: statuses, seats, duplicates, confirm, cancel,
expiry, the outbox job, and the same rules on the embedded SQLite database."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from eduflow.errors import Conflict, Forbidden, NotFound, Unauthorized
from eduflow.models import Course, Enrollment, OutboxJob
from eduflow.models._base import utcnow
from eduflow.models.users import Role
from eduflow.services import enrollments
from eduflow.services.permissions import OPERATOR, Principal
from tests.factories import make_course, make_enrollment, make_user


def as_principal(user: Any) -> Principal:
    return Principal(id=user.id, username=user.username, role=Role(user.role))


def seats(session: Any, course: Course) -> int:
    session.expire_all()
    return session.get(Course, course.id).seats_taken


def test_free_course_is_active_and_paid_is_pending(session: Any) -> None:
    student = as_principal(make_user(session))
    free = make_course(session, price=0)
    paid = make_course(session, price="9.99")
    one = enrollments.enroll_student(session, student, free.id)
    two = enrollments.enroll_student(session, student, paid.id)
    assert one.status == "active" and one.confirmed_at is not None
    assert two.status == "pending" and two.confirmed_at is None
    assert seats(session, free) == 1 and seats(session, paid) == 1
    jobs = session.execute(select(OutboxJob)).scalars().all()
    assert [(j.job_name, j.args) for j in jobs] == [
        ("send_enrollment_email", {"enrollment_id": one.id}),
        ("send_enrollment_email", {"enrollment_id": two.id}),
    ]


def test_duplicate_is_409_and_keeps_the_seat_count(session: Any) -> None:
    student = as_principal(make_user(session))
    course = make_course(session, capacity=5)
    enrollments.enroll_student(session, student, course.id)
    with pytest.raises(Conflict) as info:
        enrollments.enroll_student(session, student, course.id)
    assert info.value.problem_slug == "already-enrolled"
    assert seats(session, course) == 1


def test_full_course_is_409_course_full(session: Any) -> None:
    course = make_course(session, capacity=1)
    first = as_principal(make_user(session))
    enrollments.enroll_student(session, first, course.id)
    with pytest.raises(Conflict) as info:
        enrollments.enroll_student(session, as_principal(make_user(session)), course.id)
    assert info.value.problem_slug == "course-full"
    with pytest.raises(Conflict) as again:  # the enrolled student hears "already enrolled"
        enrollments.enroll_student(session, first, course.id)
    assert again.value.problem_slug == "already-enrolled"
    assert seats(session, course) == 1


def test_the_outbox_row_comes_with_the_enrollment_only(session: Any) -> None:
    from eduflow.logging import bind_context, clear_context

    course = make_course(session, capacity=1)
    first = as_principal(make_user(session))
    bind_context(request_id="req-enroll-1")
    try:
        enrolled = enrollments.enroll_student(session, first, course.id)
    finally:
        clear_context()
    for student in (first, as_principal(make_user(session))):  # duplicate, then full
        with pytest.raises(Conflict):
            enrollments.enroll_student(session, student, course.id)
    jobs = session.execute(select(OutboxJob)).scalars().all()
    assert [(j.job_name, j.args, j.request_id, j.relayed_at) for j in jobs] == [
        ("send_enrollment_email", {"enrollment_id": enrolled.id}, "req-enroll-1", None)
    ]
    assert jobs[0].created_at == enrolled.created_at


def test_only_students_enroll_in_published_courses(session: Any) -> None:
    course = make_course(session)
    draft = make_course(session, is_published=False)
    with pytest.raises(Unauthorized):
        enrollments.enroll_student(session, None, course.id)
    for role in (Role.instructor, Role.admin):
        with pytest.raises(Forbidden):
            enrollments.enroll_student(session, as_principal(make_user(session, role)), course.id)
    student = as_principal(make_user(session))
    for course_id in (draft.id, 10**6):
        with pytest.raises(NotFound):
            enrollments.enroll_student(session, student, course_id)


def test_cancel_frees_the_seat_and_re_enroll_works(session: Any) -> None:
    course = make_course(session, capacity=1)
    student = as_principal(make_user(session))
    first = enrollments.enroll_student(session, student, course.id)
    enrollments.cancel_enrollment(session, student, first.id)
    assert seats(session, course) == 0
    second = enrollments.enroll_student(session, student, course.id)
    assert second.status == "active" and seats(session, course) == 1


def test_cancel_and_confirm_permissions(session: Any) -> None:
    owner = make_user(session, Role.instructor)
    course = make_course(session, owner=owner, price=10)
    student = make_user(session)
    enrollment = make_enrollment(session, student, course, status="pending")
    other_student = as_principal(make_user(session))
    other_instructor = as_principal(make_user(session, Role.instructor))
    with pytest.raises(NotFound):
        enrollments.confirm_enrollment(session, other_student, enrollment.id)
    with pytest.raises(NotFound):
        enrollments.cancel_enrollment(session, other_instructor, enrollment.id)
    with pytest.raises(Forbidden):
        enrollments.confirm_enrollment(session, as_principal(student), enrollment.id)
    with pytest.raises(Forbidden):
        enrollments.cancel_enrollment(session, as_principal(owner), enrollment.id)
    confirmed = enrollments.confirm_enrollment(session, as_principal(owner), enrollment.id)
    assert confirmed.status == "active" and confirmed.confirmed_at is not None
    with pytest.raises(Conflict) as info:  # only a pending enrollment can be confirmed
        enrollments.confirm_enrollment(session, OPERATOR, enrollment.id)
    assert info.value.problem_slug == "enrollment-not-pending"
    assert "is active and cannot be confirmed" in info.value.detail
    enrollments.cancel_enrollment(session, OPERATOR, enrollment.id)
    assert seats(session, course) == 0


def test_expiry_frees_seats_and_allows_re_enrolling(session: Any) -> None:
    course = make_course(session, price=10, capacity=2)
    other = make_course(session, price=10)
    old_student, new_student = make_user(session), make_user(session)
    old = enrollments.enroll_student(session, as_principal(old_student), course.id)
    enrollments.enroll_student(session, as_principal(old_student), other.id)
    enrollments.enroll_student(session, as_principal(new_student), course.id)
    active = make_user(session)
    session.refresh(other)  # the factory bumps the ORM counter
    make_enrollment(
        session, active, other, status="active", created_at=utcnow() - timedelta(days=3)
    )
    later = utcnow() + timedelta(hours=2)
    count = enrollments.expire_abandoned_enrollments(
        session, older_than=timedelta(hours=1), now=later
    )
    assert count == 3
    assert seats(session, course) == 0 and seats(session, other) == 1
    with pytest.raises(Conflict):
        enrollments.confirm_enrollment(session, OPERATOR, old.id)
    assert enrollments.expire_abandoned_enrollments(session, timedelta(hours=1), now=later) == 0
    again = enrollments.enroll_student(session, as_principal(old_student), course.id)
    assert again.id == old.id and again.status == "pending"
    row = session.get(Enrollment, old.id)
    session.refresh(row)
    assert row.email_sent_at is None and row.status == "pending"
    assert seats(session, course) == 1


def test_expiry_keeps_recent_pending(session: Any) -> None:
    course = make_course(session, price=10)
    enrollments.enroll_student(session, as_principal(make_user(session)), course.id)
    assert enrollments.expire_abandoned_enrollments(session, timedelta(hours=24)) == 0
    assert seats(session, course) == 1


def test_listing_is_scoped_by_role(session: Any) -> None:
    owner = make_user(session, Role.instructor)
    mine = make_course(session, owner=owner, price=5)
    theirs = make_course(session)
    student = make_user(session)
    make_enrollment(session, student, mine, status="pending")
    make_enrollment(session, student, theirs)
    make_enrollment(session, make_user(session), theirs)
    assert enrollments.list_enrollments(session, as_principal(student))[0] == 2
    count, rows = enrollments.list_enrollments(session, as_principal(owner))
    assert count == 1 and rows[0].course == mine.id and rows[0].student == student.username
    assert enrollments.list_enrollments(session, OPERATOR)[0] == 3
    assert enrollments.list_enrollments(session, OPERATOR, course_id=theirs.id)[0] == 2
    assert enrollments.list_enrollments(session, OPERATOR, status="pending")[0] == 1
    assert enrollments.list_enrollments(session, OPERATOR, student_id=student.id)[0] == 2


def test_same_rules_on_sqlite(sqlite_url: str) -> None:
    from eduflow import schema
    from eduflow.db import session_scope

    schema.upgrade("head")
    with session_scope() as session:
        course = make_course(session, capacity=1, price="2.50")
        student = as_principal(make_user(session))
        course_id = course.id
        enrollment = enrollments.enroll_student(session, student, course_id)
        assert enrollment.status == "pending"
        with pytest.raises(Conflict) as dup:
            enrollments.enroll_student(session, student, course_id)
        assert dup.value.problem_slug == "already-enrolled"
        with pytest.raises(Conflict) as full:
            enrollments.enroll_student(session, as_principal(make_user(session)), course_id)
        assert full.value.problem_slug == "course-full"
        assert (
            enrollments.expire_abandoned_enrollments(
                session, timedelta(hours=1), now=utcnow() + timedelta(hours=2)
            )
            == 1
        )
        assert enrollments.enroll_student(session, student, course_id).id == enrollment.id
    with session_scope() as session:
        assert session.get(Course, course_id).seats_taken == 1


# ------------------------------------------------- one self-committing statement (PostgreSQL)


def _at_once(student: Principal, course_id: int) -> Any:
    from eduflow.db import autocommit_connection

    with autocommit_connection() as connection:
        return enrollments.enroll_in_one_statement(connection, student, course_id)


def _written(course_id: int) -> tuple[int, int, int]:
    """(enrollments, seats taken, outbox rows) as committed."""
    from sqlalchemy import func

    from eduflow.db import session_scope

    with session_scope(read_only=True) as s:
        enrolled = s.execute(
            select(func.count()).select_from(Enrollment).where(Enrollment.course_id == course_id)
        ).scalar()
        jobs = s.execute(select(func.count()).select_from(OutboxJob)).scalar()
        course = s.get(Course, course_id)
        return enrolled, course.seats_taken if course else -1, jobs


def _run_blocked(work: Any) -> tuple[Any, list[Any]]:
    """Start ``work`` in a thread; return once PostgreSQL reports it waiting for a lock."""
    import threading

    from tests.queries import wait_until_a_lock_is_awaited

    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(work())
        except Exception as exc:  # recorded for the assertions
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    wait_until_a_lock_is_awaited()
    return thread, outcome


def test_one_statement_commits_by_itself_and_relays_the_email(session: Any) -> None:
    from eduflow.cache.generations import course_gen_key
    from eduflow.cache.stores import get_redis
    from eduflow.db import autocommit_connection

    course = make_course(session, capacity=2, price="5.00")
    student = as_principal(make_user(session))
    session.commit()
    with autocommit_connection() as connection:
        enrolled = enrollments.enroll_in_one_statement(connection, student, course.id)
        assert _written(course.id) == (1, 1, 1)  # seen by others before this block ends
    assert enrolled is not None and enrolled.status == "pending" and enrolled.confirmed_at is None
    job = session.execute(select(OutboxJob)).scalar_one()
    assert (job.job_name, job.args, job.created_at) == (
        "send_enrollment_email",
        {"enrollment_id": enrolled.id},
        enrolled.created_at,
    )
    row = session.get(Enrollment, enrolled.id)
    assert row is not None and (row.student_id, row.status) == (student.id, "pending")
    client = get_redis()
    assert client.lrange("rq:queue:default", 0, -1) == [f"outbox-{job.id}".encode()]
    assert client.get(course_gen_key(course.id)) is not None  # the catalogue was invalidated


def test_one_statement_turns_away_what_cannot_succeed_without_writing(session: Any) -> None:
    full = make_course(session, capacity=1)
    roomy = make_course(session, capacity=5)
    draft = make_course(session, is_published=False)
    first = make_user(session)
    make_enrollment(session, first, full)
    make_enrollment(session, first, roomy)
    student = as_principal(make_user(session))
    session.commit()
    for course_id in (full.id, roomy.id):  # told from the figures, no seat taken meanwhile
        with pytest.raises(Conflict) as dup:
            _at_once(as_principal(first), course_id)
        assert dup.value.problem_slug == "already-enrolled"
    with pytest.raises(Conflict) as no_seat:
        _at_once(student, full.id)
    assert no_seat.value.problem_slug == "course-full"
    for course_id in (draft.id, 10**6):
        with pytest.raises(NotFound):
            _at_once(student, course_id)
    assert _written(full.id) == (1, 1, 0) and _written(roomy.id) == (1, 1, 0)
    assert _written(draft.id) == (0, 0, 0)


def test_one_statement_leaves_an_expired_enrollment_to_the_transaction(session: Any) -> None:
    course = make_course(session, capacity=1)
    student = make_user(session)
    expired = make_enrollment(session, student, course, status="expired")
    course.seats_taken = 0  # an expired enrollment holds no seat
    session.commit()
    assert _at_once(as_principal(student), course.id) is None
    assert _written(course.id) == (1, 0, 0)
    again = enrollments.enroll_student(session, as_principal(student), course.id)
    assert again.id == expired.id and again.status == "active"


def test_one_statement_writes_nothing_when_the_course_fills_meanwhile(session: Any) -> None:
    from sqlalchemy import update

    from eduflow.db import session_scope

    course = make_course(session, capacity=1)
    student = as_principal(make_user(session))
    session.commit()
    with session_scope() as other:  # a seat taken, not committed yet: the row is locked
        other.execute(update(Course).where(Course.id == course.id).values(seats_taken=1))
        thread, outcome = _run_blocked(lambda: _at_once(student, course.id))
    thread.join(timeout=30)
    assert outcome == [None]  # the transactional path says why (course full)
    assert _written(course.id) == (0, 1, 0)


def test_one_statement_undoes_its_seat_when_a_duplicate_races_in(session: Any) -> None:
    from eduflow.db import session_scope

    course = make_course(session, capacity=5)
    student = make_user(session)
    session.commit()
    with session_scope() as other:  # the same student's enrollment, not committed yet
        other.add(Enrollment(student_id=student.id, course_id=course.id, status="active"))
        other.flush()
        thread, outcome = _run_blocked(lambda: _at_once(as_principal(student), course.id))
    thread.join(timeout=30)
    assert outcome == [None]
    assert _written(course.id) == (1, 0, 0)  # the seat taken by the statement was undone
    with pytest.raises(Conflict) as dup:
        enrollments.enroll_student(session, as_principal(student), course.id)
    assert dup.value.problem_slug == "already-enrolled"
