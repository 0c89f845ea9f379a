"""Lessons: visible with their course; content only for its owner, admins and active students.

Writes belong to the course owner and admins. They lock the course row, so the course's
``lessons_count`` and the default ``order_index`` stay right under concurrent writes, and
they invalidate the cached catalogue after the commit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, exists, false, func, select, true
from sqlmodel import Session, col

from eduflow.cache.catalog import invalidate_catalog
from eduflow.errors import Conflict, NotFound
from eduflow.models._base import utcnow
from eduflow.models.courses import Course
from eduflow.models.enrollments import Enrollment, EnrollmentStatus
from eduflow.models.lessons import Lesson, LessonCreate, LessonPublic, LessonUpdate
from eduflow.services import progress
from eduflow.services.courses import (
    can_see,
    get_course_for_change,
    get_visible_course,
    parse_input,
)
from eduflow.services.permissions import Principal, visible_courses


def content_readable(actor: Principal | None) -> ColumnElement[bool]:
    """SQL condition (over ``courses``): ``actor`` may read the lessons' content."""
    if actor is None:
        return false()
    if actor.is_admin:
        return true()
    enrolled = exists().where(
        col(Enrollment.course_id) == col(Course.id),
        col(Enrollment.student_id) == actor.id,
        col(Enrollment.status) == EnrollmentStatus.active.value,
    )
    if not actor.is_instructor:  # a demoted owner reads like any student
        return enrolled
    return (col(Course.owner_id) == actor.id) | enrolled


def to_public(lesson: Lesson, readable: bool) -> LessonPublic:
    """The representation of ``lesson``; ``content`` is null unless ``readable``."""
    assert lesson.id is not None
    return LessonPublic(
        id=lesson.id,
        course=lesson.course_id,
        title=lesson.title,
        content=lesson.content if readable else None,
        duration_min=lesson.duration_min,
        order_index=lesson.order_index,
        created_at=lesson.created_at,
        updated_at=lesson.updated_at,
    )


def list_lessons(
    session: Session,
    actor: Principal | None,
    course_id: int | None = None,
    *,
    offset: int = 0,
    limit: int | None = 20,
) -> tuple[int, list[LessonPublic]]:
    """``(total, page)`` of lessons of visible courses (of ``course_id`` when given, else 404),
    ordered by course then ``order_index``; two queries whatever the page size."""
    conditions: list[Any] = [visible_courses(actor)]
    if course_id is not None:
        get_visible_course(session, actor, course_id)
        conditions.append(col(Lesson.course_id) == course_id)
    total = session.execute(
        select(func.count())
        .select_from(Lesson)
        .join(Course, col(Course.id) == col(Lesson.course_id))
        .where(*conditions)
    ).scalar()
    stmt = (
        select(Lesson, content_readable(actor).label("readable"))
        .join(Course, col(Course.id) == col(Lesson.course_id))
        .where(*conditions)
        .order_by(col(Lesson.course_id), col(Lesson.order_index), col(Lesson.id))
        .offset(offset)
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    rows = session.execute(stmt).all()
    return int(total or 0), [to_public(lesson, bool(readable)) for lesson, readable in rows]


def lesson_detail(session: Session, actor: Principal | None, lesson_id: int) -> LessonPublic:
    """``GET /lessons/{id}/``: one query; 404 when its course is invisible to ``actor``."""
    row = session.execute(
        select(Lesson, Course, content_readable(actor).label("readable"))
        .join(Course, col(Course.id) == col(Lesson.course_id))
        .where(col(Lesson.id) == lesson_id)
    ).one_or_none()
    if row is None or not can_see(actor, row[1]):
        raise NotFound(f"No lesson with id {lesson_id}")
    return to_public(row[0], bool(row[2]))


def _next_order_index(session: Session, course_id: int) -> int:
    current = session.execute(
        select(func.max(col(Lesson.order_index))).where(col(Lesson.course_id) == course_id)
    ).scalar()
    return int(current or 0) + 1


def create_lesson(
    session: Session, actor: Principal, data: LessonCreate | Mapping[str, Any]
) -> LessonPublic:
    """Add a lesson to a course (owner/admin); without ``order_index`` it goes last."""
    payload = parse_input(LessonCreate, data)
    course = get_course_for_change(session, actor, payload.course)
    assert course.id is not None
    order_index = payload.order_index or _next_order_index(session, course.id)
    lesson = Lesson(
        course_id=course.id,
        title=payload.title,
        content=payload.content,
        duration_min=payload.duration_min,
        order_index=order_index,
    )
    course.lessons_count += 1  # the course row is locked: the counter cannot drift
    session.add_all([course, lesson])
    session.flush()
    invalidate_catalog(session, course.id)
    return to_public(lesson, True)


def _lesson_for_change(session: Session, actor: Principal, lesson_id: int) -> tuple[Lesson, Course]:
    lesson = session.get(Lesson, lesson_id)
    if lesson is None:
        raise NotFound(f"No lesson with id {lesson_id}")
    try:
        course = get_course_for_change(session, actor, lesson.course_id)
    except NotFound as exc:
        raise NotFound(f"No lesson with id {lesson_id}") from exc
    # Read again under the course lock: a write that got the lock first may have deleted it
    # (else a second delete would decrement lessons_count twice, an update would hit no row).
    current = session.get(Lesson, lesson_id, populate_existing=True)
    if current is None:
        raise NotFound(f"No lesson with id {lesson_id}")
    return current, course


def update_lesson(
    session: Session,
    actor: Principal,
    lesson_id: int,
    data: LessonUpdate | LessonCreate | Mapping[str, Any],
) -> LessonPublic:
    """Change a lesson (course owner/admin). ``LessonCreate`` replaces it (PUT; it must name
    the same course), ``LessonUpdate`` or a mapping changes only the fields given (PATCH)."""
    if isinstance(data, LessonCreate):
        changes = data.model_dump(exclude={"course"})
        if changes["order_index"] is None:
            del changes["order_index"]
    else:
        changes = parse_input(LessonUpdate, data).model_dump(exclude_unset=True)
    lesson, course = _lesson_for_change(session, actor, lesson_id)
    if isinstance(data, LessonCreate) and data.course != lesson.course_id:
        # A well-formed body that contradicts the stored lesson: a conflict (RFC 9110, 409).
        raise Conflict(
            f"Lesson {lesson_id} belongs to course {lesson.course_id}; a lesson never moves",
            errors=[{"field": "course", "message": "a lesson cannot move to another course"}],
        )
    for name, value in changes.items():
        setattr(lesson, name, value)
    lesson.updated_at = utcnow()
    session.add(lesson)
    session.flush()
    invalidate_catalog(session, course.id)
    return to_public(lesson, True)


def delete_lesson(session: Session, actor: Principal, lesson_id: int) -> None:
    """Delete a lesson (course owner/admin), with its progress rows: the counters of the
    enrollments that completed it drop by one, and enrollments that have now completed
    every remaining lesson complete the course (``services.progress``)."""
    lesson, course = _lesson_for_change(session, actor, lesson_id)
    assert course.id is not None and lesson.id is not None
    progress.before_lesson_deleted(session, course.id, lesson.id)
    session.delete(lesson)
    course.lessons_count = max(0, course.lessons_count - 1)
    session.add(course)
    session.flush()
    progress.complete_finished(session, course.id)
    invalidate_catalog(session, course.id)
