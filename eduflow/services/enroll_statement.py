"""The enrollment as one self-committing statement on PostgreSQL, composed from the seat
rules of ``services.seats`` (the transactional ``enroll_student`` runs the same pieces as
separate statements).

The course row is locked from the seat ``UPDATE`` to the commit inside the server only, with
no client round trip in between, so a rushed course is not held up by the client.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import DateTime, Integer, bindparam, exists, insert, literal, select, true
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from eduflow.logging import current_request_id
from eduflow.models._base import utcnow
from eduflow.models.courses import Course
from eduflow.models.enrollments import Enrollment, EnrollmentPublic, EnrollmentStatus
from eduflow.models.outbox import OutboxJob
from eduflow.services import seats
from eduflow.services.enrollment_reads import new_public
from eduflow.services.permissions import Principal
from eduflow.tracing import current_trace_context

PAIR_CONSTRAINT = "uq_enrollments_student_course"


def enroll_in_one_statement(
    connection: Connection, actor: Principal, course_id: int
) -> EnrollmentPublic | None:
    """``enroll_student`` of a student (``actor``, checked by the caller) in one statement
    that commits by itself, on a connection in autocommit mode.

    The statement is whole whatever it finds (see ``_one_statement``), which is what lets
    it commit unseen; what follows (``seats.follow_enrollment``) runs once it has. None when
    the transactional ``enroll_student`` must decide: an earlier (expired) enrollment to
    reuse, a duplicate that raced in, or a course that changed while we waited for its lock.
    """
    assert connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT"
    now = utcnow()
    request_id = current_request_id()
    trace_context = current_trace_context()
    params = {
        "course_id": course_id,
        "student_id": actor.id,
        "now": now,
        "job_name": seats.EMAIL_JOB,
        "job_queue": seats.EMAIL_QUEUE,
        "request_id": request_id,
        "trace_context": trace_context,
    }
    try:
        row = connection.execute(_one_statement(), params).one_or_none()
    except IntegrityError as exc:  # the whole statement was undone
        if _constraint(exc) == PAIR_CONSTRAINT:
            return None
        raise
    if row is None or row.enrollment_id is None:
        seats.refuse_early(row, course_id)
        return None  # the course changed under its lock, or an expired row to reuse
    enrollment_id = int(row.enrollment_id)
    job = seats.email_job(row.job_id, enrollment_id, request_id, trace_context)
    seats.follow_enrollment(course_id, job)
    status = EnrollmentStatus(row.status)
    return new_public(
        enrollment_id, course_id, row.title, actor, status, now, row.confirmed_at, row.lessons_count
    )


def _constraint(exc: IntegrityError) -> str | None:
    diag = getattr(exc.orig, "diag", None)
    return getattr(diag, "constraint_name", None)


# Built once (bound parameters): building SQLAlchemy constructs costs more CPU per request
# than running them.
@cache
def _one_statement() -> Any:
    """Read the figures, take a seat, insert the enrollment and its confirmation email's
    outbox row: one row ``(figures…, enrollment_id, status, confirmed_at, job_id)``, the last
    four None
    when nothing was written; no row when the course does not exist.

    Each outcome is whole, so the statement may commit without being looked at:
    - the seat is taken only when the student has no enrollment at all for the course
      (an expired one is reused by ``enroll_student``), and the course row lock re-checks
      publication and capacity: no seat, nothing is written;
    - the insert has no ``ON CONFLICT``: a duplicate that raced in between our snapshot
      and the insert makes the unique constraint fail the statement, seat included;
    - the outbox row is written for the inserted enrollment only.
    """
    course_id = bindparam("course_id", type_=Integer)
    student_id = bindparam("student_id", type_=Integer)
    now = bindparam("now", type_=DateTime(timezone=True))
    figures = seats.course_figures(course_id, student_id).cte("figures")
    no_enrollment = ~exists().where(
        col(Enrollment.student_id) == student_id, col(Enrollment.course_id) == course_id
    )
    seat: Any = (
        seats.take_seat(course_id)
        .where(no_enrollment)
        .returning(col(Course.id), col(Course.price))
        .cte("seat")
    )
    values = seats.new_row_values(student_id, seat.c.id, seat.c.price, now)
    inserted = (
        insert(Enrollment)
        .from_select(list(values), select(*values.values()))
        .returning(col(Enrollment.id), col(Enrollment.status), col(Enrollment.confirmed_at))
        .cte("inserted")
    )
    outbox: Any = OutboxJob.__table__  # type: ignore[attr-defined]
    job = (
        insert(outbox)
        .from_select(
            ["job_name", "args", "queue", "request_id", "trace_context", "created_at", "attempts"],
            select(
                bindparam("job_name", type_=outbox.c.job_name.type),
                seats.email_args_sql(inserted.c.id),
                bindparam("job_queue", type_=outbox.c.queue.type),
                bindparam("request_id", type_=outbox.c.request_id.type),
                bindparam("trace_context", type_=outbox.c.trace_context.type),
                now,
                literal(0),
            ).select_from(inserted),
        )
        .returning(outbox.c.id)
        .cte("job")
    )
    return select(
        figures,
        inserted.c.id.label("enrollment_id"),
        inserted.c.status,
        inserted.c.confirmed_at,
        job.c.id.label("job_id"),
    ).select_from(figures.outerjoin(inserted, true()).outerjoin(job, true()))
