"""Enrollments: enroll, confirm, cancel, and the expiry of abandoned ones.

Capacity and uniqueness under concurrency
  ``seats_taken`` counts active + pending enrollments. Enrolling takes a seat with one
  conditional ``UPDATE`` (``seats.take_seat``: atomic on PostgreSQL, the row lock re-checks
  the condition; SQLite runs one writer at a time), then inserts the enrollment with
  ``ON CONFLICT (student_id, course_id) DO UPDATE … WHERE status = 'expired'``: an expired
  row is reused, any other existing row means "already enrolled" and the seat is given
  back before the 409. A lock-free read first turns away requests for full or missing
  courses cheaply. The rules themselves (status, outbox row, what follows) live in
  ``services.seats``; ``enroll`` tries them first as one self-committing statement on
  PostgreSQL (``services.enroll_statement``) and leaves the rest to ``enroll_student``.

Lock order
  Every write that touches a course's enrollments locks the course row first, then the
  enrollment rows: enrolling (the conditional seat ``UPDATE``), confirming, cancelling and
  the expiry job, like deleting a course (which cascades to its enrollments). One order
  everywhere means a course deletion racing an unenroll waits instead of deadlocking.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from functools import cache
from typing import Any, NoReturn

from sqlalchemy import Integer, bindparam, delete, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from eduflow.cache.catalog import invalidate_catalog
from eduflow.config import get_settings
from eduflow.db import autocommit_connection, get_engine, session_scope
from eduflow.errors import Conflict, Forbidden, NotFound
from eduflow.logging import current_request_id
from eduflow.models._base import UTCDateTime, utcnow
from eduflow.models.courses import Course
from eduflow.models.enrollments import Enrollment, EnrollmentPublic, EnrollmentStatus
from eduflow.models.outbox import OutboxJob
from eduflow.outbox import record_row
from eduflow.services import audit, email_verification, seats
from eduflow.services.enroll_statement import enroll_in_one_statement
from eduflow.services.enrollment_reads import (
    enrollments_page,
    get_enrollment,
    list_enrollments,
    load_visible,
    new_public,
    to_public,
)
from eduflow.services.permissions import Principal, is_owner_or_admin, require_authenticated
from eduflow.services.seats import SEAT_HOLDING

__all__ = [
    "SEAT_HOLDING",
    "cancel_enrollment",
    "confirm_enrollment",
    "enroll",
    "enroll_in_one_statement",
    "enroll_student",
    "enrollments_page",
    "expire_abandoned_enrollments",
    "get_enrollment",
    "insert_enrollment",
    "list_enrollments",
]


def enroll(actor: Principal | None, course_id: int) -> EnrollmentPublic:
    """``enroll_student`` in units of work of its own, committed before it returns: on
    PostgreSQL one self-committing statement (``enroll_in_one_statement``), and the
    transaction only for what that statement leaves undecided."""
    if get_settings().require_verified_email:
        with session_scope(read_only=True) as session:
            email_verification.require_verified(session, _require_student(actor))
    if get_engine().dialect.name == "postgresql":
        student = _require_student(actor)
        with autocommit_connection() as connection:
            enrollment = enroll_in_one_statement(connection, student, course_id)
        if enrollment is not None:
            return enrollment
    with session_scope() as session:
        return enroll_student(session, actor, course_id)


def enroll_student(session: Session, actor: Principal | None, course_id: int) -> EnrollmentPublic:
    """Enroll the calling student in a published course: free -> active, paid -> pending.

    409 ``already-enrolled`` for a duplicate, 409 ``course-full`` when no seat is left.
    Runs within the caller's transaction; ``enroll_in_one_statement`` is the faster way
    on PostgreSQL when the caller can give it a statement of its own.
    """
    actor = _require_student(actor)
    email_verification.require_verified(session, actor)  # a no-op unless the policy is on
    params = {"course_id": course_id, "student_id": actor.id}
    # Core statements on the session's connection (same transaction): the ORM execution
    # layer adds nothing for column selects and costs CPU on the hot path.
    figures: Any = session.connection().execute(_precheck(), params).one_or_none()
    seats.refuse_early(figures, course_id)

    seat = session.execute(seats.take_seat(course_id).execution_options(synchronize_session=False))
    if not getattr(seat, "rowcount", 0):
        _refuse(session, actor, course_id)
    return insert_enrollment(session, actor, course_id, figures)


def insert_enrollment(
    session: Session, actor: Principal, course_id: int, figures: Any
) -> EnrollmentPublic:
    """The enrollment of ``actor`` in ``course_id`` once its seat is taken in this
    transaction (by ``enroll_student``, or by an accepted waitlist offer): the row (an
    expired one reused), its confirmation email's outbox row and what follows. 409
    ``already-enrolled`` (the seat given back) when a live enrollment exists. ``figures``:
    the course's ``title`` and ``lessons_count``."""
    now = utcnow()
    price = select(col(Course.price)).where(col(Course.id) == course_id).scalar_subquery()
    at = literal(now, UTCDateTime())
    made = session.execute(
        _upsert(session, seats.new_row_values(actor.id, course_id, price, at))
    ).one_or_none()
    if made is None:  # a live enrollment exists: give the seat back
        seats.give_back_seat(session, course_id)
        raise seats.already_enrolled(course_id)
    enrollment_id, status = int(made[0]), EnrollmentStatus(made[1])
    request_id = current_request_id()
    row = _email_row(enrollment_id, request_id, now)
    record_row(session, row, relay=False)
    assert row.id is not None
    job = seats.email_job(row.id, enrollment_id, request_id, row.trace_context)
    seats.follow_enrollment(course_id, job, session)
    return new_public(
        enrollment_id, course_id, figures.title, actor, status, now, made[2], figures.lessons_count
    )


def _email_row(enrollment_id: int, request_id: str | None, now: datetime) -> OutboxJob:
    """The outbox row of the confirmation email, dated like the enrollment."""
    return OutboxJob(
        job_name=seats.EMAIL_JOB,
        args=seats.email_args(enrollment_id),
        queue=seats.EMAIL_QUEUE,
        request_id=request_id,
        created_at=now,
    )


def _upsert(session: Session, values: dict[str, Any]) -> Any:
    dialect = session.get_bind().dialect.name
    upsert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = upsert(Enrollment).values(**values)
    excluded = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=["student_id", "course_id"],
        set_={
            "status": excluded.status,
            "created_at": excluded.created_at,
            "updated_at": excluded.updated_at,
            "confirmed_at": excluded.confirmed_at,
            "email_sent_at": None,
        },
        where=col(Enrollment.status) == EnrollmentStatus.expired.value,
    ).returning(col(Enrollment.id), col(Enrollment.status), col(Enrollment.confirmed_at))


@cache
def _precheck() -> Any:
    return seats.course_figures(
        bindparam("course_id", type_=Integer), bindparam("student_id", type_=Integer)
    )


def _require_student(actor: Principal | None) -> Principal:
    actor = require_authenticated(actor)
    if not actor.is_student:
        raise Forbidden("Only students can enroll in courses")
    return actor


def _holds_seat(session: Session, student_id: int, course_id: int) -> bool:
    status = session.execute(
        select(col(Enrollment.status)).where(
            col(Enrollment.student_id) == student_id, col(Enrollment.course_id) == course_id
        )
    ).scalar()
    return status in SEAT_HOLDING


def _refuse(session: Session, actor: Principal, course_id: int) -> NoReturn:
    """No seat was taken: say why (the caller rolls back whatever it wrote)."""
    still_open = session.execute(
        select(col(Course.is_published)).where(col(Course.id) == course_id)
    ).scalar()
    if not still_open:  # deleted or unpublished while we waited for its lock
        raise NotFound(f"No course with id {course_id}")
    if _holds_seat(session, actor.id, course_id):
        raise seats.already_enrolled(course_id)
    raise seats.course_full(course_id)


def confirm_enrollment(
    session: Session, actor: Principal | None, enrollment_id: int
) -> EnrollmentPublic:
    """pending -> active (course owner/admin). Only a pending enrollment can be confirmed:
    an active or expired one is a 409 ``enrollment-not-pending`` (HTTP and CLI alike)."""
    actor = require_authenticated(actor)
    enrollment, title, student, owner_id, total = load_visible(session, actor, enrollment_id)
    if not is_owner_or_admin(actor, owner_id):
        raise Forbidden("Only the course owner or an admin may confirm enrollments")
    if not seats.lock_course(session, enrollment.course_id):
        raise NotFound(f"No enrollment with id {enrollment_id}")
    now = utcnow()
    result = session.execute(
        update(Enrollment)
        .where(
            col(Enrollment.id) == enrollment_id,
            col(Enrollment.status) == EnrollmentStatus.pending.value,
        )
        .values(status=EnrollmentStatus.active.value, confirmed_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if not getattr(result, "rowcount", 0):
        status = session.execute(
            select(col(Enrollment.status)).where(col(Enrollment.id) == enrollment_id)
        ).scalar()
        if status is None:  # cancelled before we got the course lock
            raise NotFound(f"No enrollment with id {enrollment_id}")
        raise Conflict(
            f"Enrollment {enrollment_id} is {status} and cannot be confirmed "
            "(only a pending enrollment can)",
            slug="enrollment-not-pending",
            title="Enrollment not pending",
        )
    session.refresh(enrollment)
    audit.record(session, actor, "enrollment.confirmed", "enrollment", enrollment_id)
    invalidate_catalog(session, enrollment.course_id)
    return to_public(enrollment, title, student, total)


def cancel_enrollment(session: Session, actor: Principal | None, enrollment_id: int) -> None:
    """Unenroll (the enrolled student or an admin): the row goes and its seat is freed."""
    actor = require_authenticated(actor)
    enrollment, _, _, _, _ = load_visible(session, actor, enrollment_id)
    if not (actor.is_admin or actor.id == enrollment.student_id):
        raise Forbidden("Only the enrolled student or an admin may cancel an enrollment")
    course_id, student_id = enrollment.course_id, enrollment.student_id
    session.expunge(enrollment)
    if not seats.lock_course(session, course_id):  # the course (and this row) went meanwhile
        raise NotFound(f"No enrollment with id {enrollment_id}")
    status = session.execute(
        delete(Enrollment)
        .where(col(Enrollment.id) == enrollment_id)
        .returning(col(Enrollment.status))
        .execution_options(synchronize_session=False)
    ).scalar()
    if status is None:  # cancelled concurrently
        raise NotFound(f"No enrollment with id {enrollment_id}")
    if actor.id != student_id:  # an admin's (or operator's) cancellation is audited
        details = {"course_id": course_id, "student_id": student_id, "status": status}
        audit.record(session, actor, "enrollment.cancelled", "enrollment", enrollment_id, details)
    seats.seats_freed(session, course_id, 1 if status in SEAT_HOLDING else 0)


def expire_abandoned_enrollments(
    session: Session, older_than: timedelta, *, now: datetime | None = None
) -> int:
    """Expire pending enrollments created more than ``older_than`` ago and free their seats."""
    cutoff = (now or utcnow()) - older_than
    abandoned = (
        col(Enrollment.status) == EnrollmentStatus.pending.value,
        col(Enrollment.created_at) < cutoff,
    )
    candidates = select(col(Enrollment.course_id)).where(*abandoned)
    # Courses first, locked in id order (see "Lock order"); one deleted meanwhile drops out.
    locked = seats.lock_courses(session, candidates)
    if not locked:
        return 0
    course_ids = (
        session.execute(
            update(Enrollment)
            .where(*abandoned, col(Enrollment.course_id).in_(locked))
            .values(status=EnrollmentStatus.expired.value, updated_at=utcnow())
            .returning(col(Enrollment.course_id))
            .execution_options(synchronize_session=False)
        )
        .scalars()
        .all()
    )
    freed = Counter(course_ids)
    for course_id in sorted(freed):
        seats.seats_freed(session, course_id, freed[course_id])
    return len(course_ids)
