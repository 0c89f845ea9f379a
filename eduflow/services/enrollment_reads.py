"""Enrollments as their readers see them: lists and single rows, for the student, the course
owner and admins (404 for anyone else)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from eduflow.errors import NotFound
from eduflow.models.courses import Course
from eduflow.models.enrollments import Enrollment, EnrollmentPublic, EnrollmentStatus
from eduflow.models.progress import progress_summary
from eduflow.models.users import User
from eduflow.services.paging import Page, PageRequest, SortKey, finish_page, plan_page
from eduflow.services.permissions import Principal, is_owner_or_admin, require_authenticated


def new_public(
    enrollment_id: int,
    course_id: int,
    title: str,
    actor: Principal,
    status: EnrollmentStatus,
    now: datetime,
    confirmed_at: datetime | None,
    total_lessons: int,
) -> EnrollmentPublic:
    """The representation of an enrollment just made (no second read)."""
    return EnrollmentPublic(
        id=enrollment_id,
        course=course_id,
        course_title=title,
        student=actor.username,
        status=status,
        created_at=now,
        updated_at=now,
        confirmed_at=confirmed_at,
        progress=progress_summary(0, total_lessons),
        completed_at=None,
    )


def to_public(
    enrollment: Enrollment, course_title: str, student: str, total_lessons: int
) -> EnrollmentPublic:
    """The representation of a stored enrollment."""
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


def _visible_enrollments(actor: Principal) -> list[Any]:
    if actor.is_admin:
        return []
    if actor.is_instructor:
        return [col(Course.owner_id) == actor.id]
    return [col(Enrollment.student_id) == actor.id]


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
    results = [to_public(e, title, student, n) for e, title, student, _, n in kept]
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


def load_visible(
    session: Session, actor: Principal, enrollment_id: int
) -> tuple[Enrollment, str, str, int, int]:
    """The enrollment with its course title, student name, course owner and the course's
    lesson count, when ``actor`` may see it (404 otherwise)."""
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
    enrollment, title, student, _, total = load_visible(session, actor, enrollment_id)
    return to_public(enrollment, title, student, total)
