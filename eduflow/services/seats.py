"""The seat rules, written once: may this student take a seat, with which status, and what
follows (the confirmation email's outbox row, the catalogue invalidation); and what follows
when seats free.

Both ways of enrolling are built from these pieces: the transactional ``enroll_student``
runs them as separate statements in the caller's transaction (PostgreSQL and SQLite), and
``enroll_statement`` composes the very same expressions into one self-committing statement
on PostgreSQL. A rule changed here changes both; ``tests/services/test_seat_parity.py``
pins that they write the same rows.

Seats free in one place: ``seats_freed`` (unenroll, cancel, abandoned pending expired,
capacity raised). It runs under the course row lock, in the transaction that frees them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, func, literal_column, null, select, update
from sqlmodel import Session, col

from eduflow.cache.catalog import bump_catalog_generations, invalidate_catalog
from eduflow.errors import Conflict, NotFound
from eduflow.models.courses import Course
from eduflow.models.enrollments import Enrollment, EnrollmentStatus
from eduflow.outbox import InsertedJob, relay_after_commit
from eduflow.services.waitlist_offers import offer_free_seats

WAITLIST_PATH = "/api/v1/waitlist/"

SEAT_HOLDING = (EnrollmentStatus.pending.value, EnrollmentStatus.active.value)
EMAIL_JOB = "send_enrollment_email"
EMAIL_QUEUE = "default"


# --------------------------------------------------------------------------- may they


def take_seat(course_id: Any) -> Any:
    """``UPDATE courses`` taking one seat of a published course that has one left: the
    capacity rule (``seats_taken + offers_open < capacity``: seats held for waitlist offers
    are not free) in a single conditional statement (the row lock re-checks it), so no
    concurrency can oversell."""
    return (
        update(Course)
        .where(col(Course.id) == course_id, col(Course.is_published), has_free_seat())
        .values(seats_taken=col(Course.seats_taken) + 1)
    )


def has_free_seat() -> Any:
    """The capacity rule as SQL over the course row: a seat is free when neither taken nor
    held for a waitlist offer (``is_full`` is the same rule over figures already read)."""
    return (col(Course.capacity).is_(None)) | (
        col(Course.seats_taken) + col(Course.offers_open) < col(Course.capacity)
    )


def course_figures(course_id: Any, student_id: Any) -> Any:
    """The course's figures and the student's existing status, read without any lock."""
    existing = (
        select(col(Enrollment.status))
        .where(col(Enrollment.student_id) == student_id, col(Enrollment.course_id) == course_id)
        .scalar_subquery()
    )
    return select(
        col(Course.title),
        col(Course.price),
        col(Course.is_published),
        col(Course.capacity),
        col(Course.seats_taken),
        col(Course.offers_open),
        col(Course.lessons_count),
        existing.label("existing"),
    ).where(col(Course.id) == course_id)


def already_enrolled(course_id: int) -> Conflict:
    """409 ``already-enrolled``."""
    return Conflict(
        f"You are already enrolled in course {course_id}",
        slug="already-enrolled",
        title="Already enrolled",
    )


def course_full(course_id: int) -> Conflict:
    """409 ``course-full``."""
    return Conflict(
        f"Course {course_id} has no seat left; join its waitlist with POST {WAITLIST_PATH} "
        f'{{"course": {course_id}}}',
        slug="course-full",
        title="Course full",
        extensions={"waitlist": WAITLIST_PATH},
    )


def refuse_early(figures: Any, course_id: int) -> None:
    """Turn away, from the figures read without a lock, a request that cannot succeed:
    missing or unpublished course, a live enrollment, no seat left."""
    if figures is None or not figures.is_published:
        raise NotFound(f"No course with id {course_id}")
    if figures.existing in SEAT_HOLDING:
        raise already_enrolled(course_id)
    if is_full(figures.capacity, figures.seats_taken, figures.offers_open):
        raise course_full(course_id)


def is_full(capacity: int | None, seats_taken: int, offers_open: int) -> bool:
    """No seat is free: all are taken or held for waitlist offers (``has_free_seat`` is
    the same rule as SQL)."""
    return capacity is not None and seats_taken + offers_open >= capacity


# --------------------------------------------------------------------------- which status


def status_for(price: Any) -> Any:
    """The status a new enrollment gets, as SQL over the course's price: free -> active,
    paid -> pending (until confirmed)."""
    return case((price <= 0, EnrollmentStatus.active.value), else_=EnrollmentStatus.pending.value)


def confirmed_at_for(price: Any, now: Any) -> Any:
    """When a new enrollment counts as confirmed: now for a free course, never yet else."""
    return case((price <= 0, now), else_=null())


# --------------------------------------------------------------------------- what follows


def email_args(enrollment_id: Any) -> dict[str, Any]:
    """The arguments of the confirmation email's job (values or SQL expressions)."""
    return {"enrollment_id": enrollment_id}


def email_args_sql(enrollment_id: Any) -> Any:
    """``email_args`` as a JSON object built by the database (one-statement path)."""
    pairs: list[Any] = []
    for name, value in email_args(enrollment_id).items():
        pairs += [literal_column(f"'{name}'"), value]
    return func.json_build_object(*pairs)


def email_job(
    job_id: int, enrollment_id: int, request_id: str | None, trace_context: str | None
) -> InsertedJob:
    """The confirmation email's outbox row, as the relay needs it."""
    args = email_args(enrollment_id)
    return InsertedJob(job_id, EMAIL_JOB, args, EMAIL_QUEUE, request_id, trace_context)


def follow_enrollment(course_id: int, job: InsertedJob, session: Session | None = None) -> None:
    """What follows a new enrollment once it is committed: its email goes to the queue and
    the course's cached representations are retired. With ``session``: after that
    transaction commits; without: now (the statement has committed already)."""
    if session is None:
        from eduflow.db import run_after_commit

        run_after_commit(
            (lambda: relay_after_commit([job]), lambda: bump_catalog_generations(course_id))
        )
        return
    from eduflow.outbox import relay_on_commit

    relay_on_commit(session, job)
    invalidate_catalog(session, course_id)


# --------------------------------------------------------------------------- seats freed


def lock_course(session: Session, course_id: int) -> bool:
    """Lock the course row before any of its enrollments (one lock order everywhere);
    False if the course is gone.

    ``FOR NO KEY UPDATE``: it waits for a deletion and for seat changes, not for inserts
    that merely reference the course.
    """
    locked = session.execute(
        select(col(Course.id)).where(col(Course.id) == course_id).with_for_update(key_share=True)
    ).scalar()
    return locked is not None


def lock_courses(session: Session, course_ids: Any) -> list[int]:
    """Lock the courses among ``course_ids`` (ids or a subquery of them) in id order, the
    order every job that touches several courses uses; those deleted meanwhile drop out."""
    return list(
        session.execute(
            select(col(Course.id))
            .where(col(Course.id).in_(course_ids))
            .order_by(col(Course.id))
            .with_for_update(key_share=True)
        ).scalars()
    )


def give_back_seat(session: Session, course_id: int) -> None:
    """Undo a seat this transaction took but did not use (a duplicate raced in)."""
    _change_seats(session, course_id, -1)


def seats_freed(session: Session, course_id: int, count: int = 0) -> None:
    """``count`` seats of ``course_id`` are free again (0: capacity raised, none released).

    The one place for what follows when seats free -- unenroll, cancel, abandoned pending
    expired, capacity raised. The caller holds the course row lock (``lock_course``); this
    runs in its transaction, so whatever takes the freed seat commits with the release:
    the first waiting entries of the course's waitlist get them as offers
    (``waitlist_offers.offer_free_seats``) before any enrollment can see them free.
    """
    if count:
        _change_seats(session, course_id, -count)
    offer_free_seats(session, course_id)
    invalidate_catalog(session, course_id)


def take_held_seat(session: Session, course_id: int) -> None:
    """An accepted waitlist offer: the seat it held becomes a taken seat (no capacity check:
    it was held for this student)."""
    session.execute(
        update(Course)
        .where(col(Course.id) == course_id)
        .values(seats_taken=col(Course.seats_taken) + 1, offers_open=col(Course.offers_open) - 1)
        .execution_options(synchronize_session=False)
    )


def offer_released(session: Session, course_id: int, count: int = 1) -> None:
    """``count`` open offers ended without taking their seats (declined, left, expired): the
    seats they held are free again and go to the next in line."""
    session.execute(
        update(Course)
        .where(col(Course.id) == course_id)
        .values(offers_open=col(Course.offers_open) - count)
        .execution_options(synchronize_session=False)
    )
    seats_freed(session, course_id)


def _change_seats(session: Session, course_id: int, delta: int) -> None:
    session.execute(
        update(Course)
        .where(col(Course.id) == course_id)
        .values(seats_taken=col(Course.seats_taken) + delta)
        .execution_options(synchronize_session=False)
    )


def new_row_values(student_id: Any, course_id: Any, price: Any, now: Any) -> dict[str, Any]:
    """The columns of a new enrollment, as SQL (shared by both ways of enrolling)."""
    return {
        "student_id": student_id,
        "course_id": course_id,
        "status": status_for(price),
        "created_at": now,
        "updated_at": now,
        "confirmed_at": confirmed_at_for(price, now),
    }
