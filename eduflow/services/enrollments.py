"""Enrollments: enroll, confirm, cancel, list, and the expiry of abandoned ones.

Capacity and uniqueness under concurrency
  ``seats_taken`` counts active + pending enrollments. Enrolling takes a seat with one
  conditional ``UPDATE courses SET seats_taken = seats_taken + 1 WHERE … seats_taken <
  capacity`` (atomic on PostgreSQL: the row lock re-checks the condition; SQLite runs one
  writer at a time), then inserts the enrollment with ``ON CONFLICT (student_id,
  course_id) DO UPDATE … WHERE status = 'expired'``: an expired row is reused, any other
  existing row means "already enrolled" and the seat is given back before the 409.
  A lock-free read first turns away requests for full or missing courses cheaply.

  ``enroll`` (what the HTTP API calls) runs the common case, a first enrollment, as one
  self-committing statement on PostgreSQL (``enroll_in_one_statement``): the same read,
  seat and insert, where a duplicate that races in fails the unique constraint and so
  undoes the whole statement. Anything else it leaves to the transactional
  ``enroll_student``.

Lock order
  Every write that touches a course's enrollments locks the course row first, then the
  enrollment rows: enrolling (the conditional seat ``UPDATE``), confirming, cancelling and
  the expiry job, like deleting a course (which cascades to its enrollments). One order
  everywhere means a course deletion racing an unenroll waits instead of deadlocking.

Every change of seats or statuses invalidates the cached catalogue after the commit;
every new enrollment records its confirmation email in the outbox in the same transaction.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from functools import cache
from typing import Any, NoReturn

from sqlalchemy import (
    DateTime,
    Integer,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    literal,
    literal_column,
    null,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from eduflow.cache.catalog import bump_catalog_generations, invalidate_catalog
from eduflow.config import get_settings
from eduflow.db import autocommit_connection, get_engine, run_after_commit, session_scope
from eduflow.errors import Conflict, Forbidden, NotFound
from eduflow.jobs.outbox import InsertedJob, record_row, relay_after_commit
from eduflow.logging import current_request_id
from eduflow.models._base import utcnow
from eduflow.models.courses import Course
from eduflow.models.enrollments import Enrollment, EnrollmentPublic, EnrollmentStatus
from eduflow.models.outbox import OutboxJob
from eduflow.models.progress import progress_summary
from eduflow.models.users import User
from eduflow.services import audit, email_verification
from eduflow.services.paging import Page, PageRequest, SortKey, finish_page, plan_page
from eduflow.services.permissions import Principal, is_owner_or_admin, require_authenticated
from eduflow.tracing import current_trace_context

SEAT_HOLDING = (EnrollmentStatus.pending.value, EnrollmentStatus.active.value)


def _take_seat(course_id: Any) -> Any:
    """``UPDATE courses`` taking one seat of a published course that has one left: the
    capacity rule in a single conditional statement, so no concurrency can oversell."""
    return (
        update(Course)
        .where(
            col(Course.id) == course_id,
            col(Course.is_published),
            (col(Course.capacity).is_(None)) | (col(Course.seats_taken) < col(Course.capacity)),
        )
        .values(seats_taken=col(Course.seats_taken) + 1)
    )


def _already_enrolled(course_id: int) -> Conflict:
    return Conflict(
        f"You are already enrolled in course {course_id}",
        slug="already-enrolled",
        title="Already enrolled",
    )


def _course_full(course_id: int) -> Conflict:
    return Conflict(f"Course {course_id} has no seat left", slug="course-full", title="Course full")


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
    ).returning(col(Enrollment.id))


def _lock_course(session: Session, course_id: int) -> bool:
    """Lock the course row before any of its enrollments (see "Lock order"); False if gone.

    ``FOR NO KEY UPDATE``: it waits for a deletion and for seat changes, not for inserts
    that merely reference the course.
    """
    locked = session.execute(
        select(col(Course.id)).where(col(Course.id) == course_id).with_for_update(key_share=True)
    ).scalar()
    return locked is not None


def _holds_seat(session: Session, student_id: int, course_id: int) -> bool:
    status = session.execute(
        select(col(Enrollment.status)).where(
            col(Enrollment.student_id) == student_id, col(Enrollment.course_id) == course_id
        )
    ).scalar()
    return status in SEAT_HOLDING


def enroll(actor: Principal | None, course_id: int) -> EnrollmentPublic:
    """``enroll_student`` in units of work of its own, committed before it returns: on
    PostgreSQL one self-committing statement (``enroll_in_one_statement``), and the
    transaction only for what that statement leaves undecided."""
    if get_settings().require_verified_email:
        with session_scope(read_only=True) as session:
            email_verification.require_verified(session, _require_student(actor))
    if get_engine().dialect.name == "postgresql":
        with autocommit_connection() as connection:
            enrollment = enroll_in_one_statement(connection, actor, course_id)
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
    course: Any = session.connection().execute(_precheck(), params).one_or_none()
    _refuse_early(course, course_id)

    seat = session.execute(_take_seat(course_id).execution_options(synchronize_session=False))
    if not getattr(seat, "rowcount", 0):
        _refuse(session, actor, course_id)

    now = utcnow()
    status = EnrollmentStatus.pending if course.price > 0 else EnrollmentStatus.active
    values = {
        "student_id": actor.id,
        "course_id": course_id,
        "status": status.value,
        "created_at": now,
        "updated_at": now,
        "confirmed_at": now if status is EnrollmentStatus.active else None,
    }
    enrollment_id = session.execute(_upsert(session, values)).scalar()
    if enrollment_id is None:  # a live enrollment exists: give the seat back
        _release_seats(session, course_id, 1)
        raise _already_enrolled(course_id)
    record_row(session, _email_job(enrollment_id, current_request_id(), now))
    invalidate_catalog(session, course_id)
    return _new_public(
        enrollment_id, course_id, course.title, actor, status, now, course.lessons_count
    )


def enroll_in_one_statement(
    connection: Connection, actor: Principal | None, course_id: int
) -> EnrollmentPublic | None:
    """``enroll_student`` on PostgreSQL in one statement that commits by itself, on a
    connection in autocommit mode (``autocommit_connection()``).

    The course row is locked from the seat ``UPDATE`` to the commit: inside the server
    here, with no client round trip in between, so a rushed course is not held up by the
    client (its interpreter lock, the network). The statement is whole whatever it finds
    (see ``_one_statement``), which is what lets it commit unseen; the email is handed to
    the queue and the catalogue invalidated once it has. None when the transactional
    ``enroll_student`` must decide: an earlier (expired) enrollment to reuse, a duplicate
    that raced in, or a course that changed while we waited for its lock.
    """
    assert connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT"
    actor = _require_student(actor)
    now = utcnow()
    request_id = current_request_id()
    trace_context = current_trace_context()
    params = {
        "course_id": course_id,
        "student_id": actor.id,
        "now": now,
        "job_name": _EMAIL_JOB,
        "job_queue": _EMAIL_QUEUE,
        "request_id": request_id,
        "trace_context": trace_context,
    }
    try:
        row = connection.execute(_one_statement(), params).one_or_none()
    except IntegrityError as exc:  # the whole statement was undone
        if _constraint(exc) == _PAIR_CONSTRAINT:
            return None
        raise
    if row is None or row.enrollment_id is None:
        _refuse_early(row, course_id)
        return None  # the course changed under its lock, or an expired row to reuse
    enrollment_id = int(row.enrollment_id)
    job = InsertedJob(
        row.job_id,
        _EMAIL_JOB,
        {"enrollment_id": enrollment_id},
        _EMAIL_QUEUE,
        request_id,
        trace_context,
    )
    run_after_commit(
        (lambda: relay_after_commit([job]), lambda: bump_catalog_generations(course_id))
    )
    status = EnrollmentStatus(row.status)
    return _new_public(enrollment_id, course_id, row.title, actor, status, now, row.lessons_count)


_EMAIL_JOB = "send_enrollment_email"
_EMAIL_QUEUE = "default"
_PAIR_CONSTRAINT = "uq_enrollments_student_course"


def _email_job(enrollment_id: int, request_id: str | None, now: datetime) -> OutboxJob:
    """The outbox row of the confirmation email, dated like the enrollment."""
    return OutboxJob(
        job_name=_EMAIL_JOB,
        args={"enrollment_id": enrollment_id},
        queue=_EMAIL_QUEUE,
        request_id=request_id,
        created_at=now,
    )


def _require_student(actor: Principal | None) -> Principal:
    actor = require_authenticated(actor)
    if not actor.is_student:
        raise Forbidden("Only students can enroll in courses")
    return actor


def _refuse_early(course: Any, course_id: int) -> None:
    """Turn away, from the course's figures read without a lock, a request that cannot
    succeed: missing or unpublished course, a live enrollment, no seat left."""
    if course is None or not course.is_published:
        raise NotFound(f"No course with id {course_id}")
    if course.existing in SEAT_HOLDING:
        raise _already_enrolled(course_id)
    if course.capacity is not None and course.seats_taken >= course.capacity:
        raise _course_full(course_id)


def _constraint(exc: IntegrityError) -> str | None:
    diag = getattr(exc.orig, "diag", None)
    return getattr(diag, "constraint_name", None)


def _new_public(
    enrollment_id: int,
    course_id: int,
    title: str,
    actor: Principal,
    status: EnrollmentStatus,
    now: datetime,
    total_lessons: int,
) -> EnrollmentPublic:
    return EnrollmentPublic(
        id=enrollment_id,
        course=course_id,
        course_title=title,
        student=actor.username,
        status=status,
        created_at=now,
        updated_at=now,
        confirmed_at=now if status is EnrollmentStatus.active else None,
        progress=progress_summary(0, total_lessons),
        completed_at=None,
    )


# The statements of the enrollment path are built once (bound parameters): building
# SQLAlchemy constructs costs more CPU per request than running them.
def _figures(course_id: Any, student_id: Any) -> Any:
    """The course's figures and the student's existing status, without any lock."""
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
        col(Course.lessons_count),
        existing.label("existing"),
    ).where(col(Course.id) == course_id)


@cache
def _precheck() -> Any:
    return _figures(bindparam("course_id", type_=Integer), bindparam("student_id", type_=Integer))


@cache
def _one_statement() -> Any:
    """Read the figures, take a seat, insert the enrollment and its confirmation email's
    outbox row: one row ``(figures…, enrollment_id, status, job_id)``, the last three None
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
    figures = _figures(course_id, student_id).cte("figures")
    no_enrollment = ~exists().where(
        col(Enrollment.student_id) == student_id, col(Enrollment.course_id) == course_id
    )
    seat = (
        _take_seat(course_id).where(no_enrollment).returning(col(Course.id), col(Course.price))
    ).cte("seat")
    free = seat.c.price <= 0
    status = case((free, EnrollmentStatus.active.value), else_=EnrollmentStatus.pending.value)
    inserted = (
        insert(Enrollment)
        .from_select(
            ["student_id", "course_id", "status", "created_at", "updated_at", "confirmed_at"],
            select(student_id, seat.c.id, status, now, now, case((free, now), else_=null())),
        )
        .returning(col(Enrollment.id), col(Enrollment.status))
        .cte("inserted")
    )
    outbox: Any = OutboxJob.__table__  # type: ignore[attr-defined]
    args = func.json_build_object(literal_column("'enrollment_id'"), inserted.c.id)
    job = (
        insert(outbox)
        .from_select(
            ["job_name", "args", "queue", "request_id", "trace_context", "created_at", "attempts"],
            select(
                bindparam("job_name", type_=outbox.c.job_name.type),
                args,
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
        job.c.id.label("job_id"),
    ).select_from(figures.outerjoin(inserted, true()).outerjoin(job, true()))


def _refuse(session: Session, actor: Principal, course_id: int) -> NoReturn:
    """No seat was taken: say why (the caller rolls back whatever it wrote)."""
    still_open = session.execute(
        select(col(Course.is_published)).where(col(Course.id) == course_id)
    ).scalar()
    if not still_open:  # deleted or unpublished while we waited for its lock
        raise NotFound(f"No course with id {course_id}")
    if _holds_seat(session, actor.id, course_id):
        raise _already_enrolled(course_id)
    raise _course_full(course_id)


def _release_seats(session: Session, course_id: int, count: int) -> None:
    session.execute(
        update(Course)
        .where(col(Course.id) == course_id)
        .values(seats_taken=col(Course.seats_taken) - count)
        .execution_options(synchronize_session=False)
    )


def _visible_enrollments(actor: Principal) -> list[Any]:
    if actor.is_admin:
        return []
    if actor.is_instructor:
        return [col(Course.owner_id) == actor.id]
    return [col(Enrollment.student_id) == actor.id]


def _public(
    enrollment: Enrollment, course_title: str, student: str, total_lessons: int
) -> EnrollmentPublic:
    assert enrollment.id is not None
    return EnrollmentPublic(
        id=enrollment.id,
        course=enrollment.course_id,
        course_title=course_title,
        student=student,
        status=EnrollmentStatus(enrollment.status),
        created_at=enrollment.created_at,
        updated_at=enrollment.updated_at,
        confirmed_at=enrollment.confirmed_at,
        progress=progress_summary(enrollment.completed_lessons, total_lessons),
        completed_at=enrollment.completed_at,
    )


def _select_enrollments() -> Any:
    return (
        select(
            Enrollment,
            col(Course.title),
            col(User.username),
            col(Course.owner_id),
            col(Course.lessons_count),
        )
        .join(Course, col(Course.id) == col(Enrollment.course_id))
        .join(User, col(User.id) == col(Enrollment.student_id))
    )


ENROLLMENT_ORDER = SortKey(
    "-created_at", (col(Enrollment.created_at), col(Enrollment.id)), descending=True
)


def enrollments_page(
    session: Session,
    actor: Principal | None,
    *,
    course_id: int | None = None,
    student_id: int | None = None,
    status: EnrollmentStatus | str | None = None,
    request: PageRequest | None = None,
) -> Page[EnrollmentPublic]:
    """One page, newest first (see ``services.paging``): students see their own,
    instructors those in their courses, admins all; two queries whatever the page."""
    actor = require_authenticated(actor)
    request = request or PageRequest()
    conditions = _visible_enrollments(actor)
    ids = select(col(Enrollment.id))
    if conditions:  # an instructor's: through the courses they own
        ids = ids.join(Course, col(Course.id) == col(Enrollment.course_id))
    if course_id is not None:
        conditions.append(col(Enrollment.course_id) == course_id)
    if student_id is not None:
        conditions.append(col(Enrollment.student_id) == student_id)
    if status is not None:
        conditions.append(col(Enrollment.status) == EnrollmentStatus(status).value)
    plan = plan_page(session, ids.where(*conditions), ENROLLMENT_ORDER, request)
    if plan.ids is None:
        return Page(plan.count, plan.count_exact)
    rows = session.execute(
        _select_enrollments()
        .where(col(Enrollment.id).in_(plan.ids))
        .order_by(*ENROLLMENT_ORDER.order_by())
    ).all()
    kept, cursor = finish_page(plan, ENROLLMENT_ORDER, rows, lambda r: r[0])
    results = [_public(e, title, student, n) for e, title, student, _, n in kept]
    return Page(plan.count, plan.count_exact, results, cursor)


def list_enrollments(
    session: Session,
    actor: Principal | None,
    *,
    course_id: int | None = None,
    student_id: int | None = None,
    status: EnrollmentStatus | str | None = None,
    offset: int = 0,
    limit: int | None = 20,
) -> tuple[int, list[EnrollmentPublic]]:
    """``(count, page)`` by offset (``enrollments_page``)."""
    page = enrollments_page(
        session,
        actor,
        course_id=course_id,
        student_id=student_id,
        status=status,
        request=PageRequest(offset=offset, limit=limit),
    )
    return page.count, page.results


def _load_visible(
    session: Session, actor: Principal, enrollment_id: int
) -> tuple[Enrollment, str, str, int, int]:
    row = session.execute(
        _select_enrollments().where(col(Enrollment.id) == enrollment_id)
    ).one_or_none()
    if row is None:
        raise NotFound(f"No enrollment with id {enrollment_id}")
    enrollment, title, student, owner_id, total_lessons = row
    if not (actor.id == enrollment.student_id or is_owner_or_admin(actor, owner_id)):
        raise NotFound(f"No enrollment with id {enrollment_id}")
    return enrollment, title, student, owner_id, total_lessons


def get_enrollment(
    session: Session, actor: Principal | None, enrollment_id: int
) -> EnrollmentPublic:
    """One enrollment, for its student, the course owner and admins (404 for anyone else)."""
    actor = require_authenticated(actor)
    enrollment, title, student, _, total = _load_visible(session, actor, enrollment_id)
    return _public(enrollment, title, student, total)


def confirm_enrollment(
    session: Session, actor: Principal | None, enrollment_id: int
) -> EnrollmentPublic:
    """pending -> active (course owner/admin). Only a pending enrollment can be confirmed:
    an active or expired one is a 409 ``enrollment-not-pending`` (HTTP and CLI alike)."""
    actor = require_authenticated(actor)
    enrollment, title, student, owner_id, total = _load_visible(session, actor, enrollment_id)
    if not is_owner_or_admin(actor, owner_id):
        raise Forbidden("Only the course owner or an admin may confirm enrollments")
    if not _lock_course(session, enrollment.course_id):
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
    return _public(enrollment, title, student, total)


def cancel_enrollment(session: Session, actor: Principal | None, enrollment_id: int) -> None:
    """Unenroll (the enrolled student or an admin): the row goes and its seat is freed."""
    actor = require_authenticated(actor)
    enrollment, _, _, _, _ = _load_visible(session, actor, enrollment_id)
    if not (actor.is_admin or actor.id == enrollment.student_id):
        raise Forbidden("Only the enrolled student or an admin may cancel an enrollment")
    course_id, student_id = enrollment.course_id, enrollment.student_id
    session.expunge(enrollment)
    if not _lock_course(session, course_id):  # the course (and this row) went meanwhile
        raise NotFound(f"No enrollment with id {enrollment_id}")
    status = session.execute(
        delete(Enrollment)
        .where(col(Enrollment.id) == enrollment_id)
        .returning(col(Enrollment.status))
        .execution_options(synchronize_session=False)
    ).scalar()
    if status is None:  # cancelled concurrently
        raise NotFound(f"No enrollment with id {enrollment_id}")
    if status in SEAT_HOLDING:
        _release_seats(session, course_id, 1)
    if actor.id != student_id:  # an admin's (or operator's) cancellation is audited
        details = {"course_id": course_id, "student_id": student_id, "status": status}
        audit.record(session, actor, "enrollment.cancelled", "enrollment", enrollment_id, details)
    invalidate_catalog(session, course_id)


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
    locked = (
        session.execute(
            select(col(Course.id))
            .where(col(Course.id).in_(candidates))
            .order_by(col(Course.id))
            .with_for_update(key_share=True)
        )
        .scalars()
        .all()
    )
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
        _release_seats(session, course_id, freed[course_id])
        invalidate_catalog(session, course_id)
    return len(course_ids)
