"""Reading learning progress: an enrollment's lessons, and a course's figures."""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, exists, func, literal_column, select, true
from sqlmodel import Session, col

from eduflow.errors import Forbidden, NotFound
from eduflow.models.courses import Course
from eduflow.models.enrollments import Enrollment, EnrollmentStatus
from eduflow.models.lessons import Lesson
from eduflow.models.progress import (
    CourseProgress,
    LessonCompletion,
    LessonProgress,
    LessonProgressPublic,
)
from eduflow.services.courses import get_visible_course
from eduflow.services.permissions import Principal, is_owner_or_admin, require_authenticated


def enrollment_progress(
    session: Session, actor: Principal | None, enrollment_id: int
) -> list[LessonProgressPublic]:
    """Every lesson of the enrollment's course with what the enrollment did with it, for the
    enrolled student, the course owner and admins (404 for anyone else); two queries."""
    actor = require_authenticated(actor)
    row = session.execute(
        select(col(Enrollment.student_id), col(Enrollment.course_id), col(Course.owner_id))
        .join(Course, col(Course.id) == col(Enrollment.course_id))
        .where(col(Enrollment.id) == enrollment_id)
    ).one_or_none()
    if row is None or not (actor.id == row.student_id or is_owner_or_admin(actor, row.owner_id)):
        raise NotFound(f"No enrollment with id {enrollment_id}")
    rows = session.execute(
        select(
            col(Lesson.id),
            col(Lesson.title),
            col(Lesson.order_index),
            col(LessonProgress.viewed_at),
            col(LessonProgress.completed_at),
        )
        .outerjoin(
            LessonProgress,
            (col(LessonProgress.lesson_id) == col(Lesson.id))
            & (col(LessonProgress.enrollment_id) == enrollment_id),
        )
        .where(col(Lesson.course_id) == row.course_id)
        .order_by(col(Lesson.order_index), col(Lesson.id))
    ).all()
    return [
        LessonProgressPublic(
            lesson=r.id,
            title=r.title,
            order_index=r.order_index,
            viewed_at=r.viewed_at,
            completed_at=r.completed_at,
        )
        for r in rows
    ]


def may_see_course_progress(actor: Principal | None, owner_id: int) -> bool:
    """The course's owner (while an instructor) and admins see its progress figures."""
    return is_owner_or_admin(actor, owner_id)


def course_progress(session: Session, actor: Principal | None, course_id: int) -> CourseProgress:
    """The course's learning figures over its active enrollments (owner or admin; 403 for
    others who see the course, 404 for those who do not): one aggregate query."""
    return course_progress_with_owner(session, actor, course_id)[0]


def course_progress_with_owner(
    session: Session, actor: Principal | None, course_id: int
) -> tuple[CourseProgress, int]:
    """``course_progress`` and the course's owner id (what a cached copy is checked against)."""
    course = get_visible_course(session, actor, course_id)
    if not may_see_course_progress(actor, course.owner_id):
        raise Forbidden("Only the course owner or an admin may see its progress")
    active = (col(Enrollment.course_id) == course_id) & (
        col(Enrollment.status) == EnrollmentStatus.active.value
    )
    total = course.lessons_count
    percent: Any = literal_column("0")
    if total > 0:
        raw_percent = col(Enrollment.completed_lessons) * 100 // total
        percent = case((raw_percent > 100, 100), else_=raw_percent)
    started = exists().where(col(LessonProgress.enrollment_id) == col(Enrollment.id))
    figures = (
        select(
            func.count().label("enrolled"),
            func.coalesce(func.sum(case((started, 1), else_=0)), 0).label("started"),
            func.count(col(Enrollment.completed_at)).label("completed"),
            func.coalesce(func.avg(percent), 0).label("average_percent"),
        )
        .where(active)
        .subquery("figures")
    )
    completions = (
        select(col(LessonProgress.lesson_id), func.count().label("completed"))
        .join(Enrollment, col(Enrollment.id) == col(LessonProgress.enrollment_id))
        .where(active, col(LessonProgress.completed_at).is_not(None))
        .group_by(col(LessonProgress.lesson_id))
        .subquery("completions")
    )
    lessons = (
        select(
            col(Lesson.id).label("lesson"),
            col(Lesson.title),
            col(Lesson.order_index),
            func.coalesce(completions.c.completed, 0).label("lesson_completed"),
        )
        .outerjoin(completions, completions.c.lesson_id == col(Lesson.id))
        .where(col(Lesson.course_id) == course_id)
        .subquery("lessons")
    )
    rows = session.execute(
        select(figures, lessons)
        .select_from(figures.outerjoin(lessons, true()))
        .order_by(lessons.c.order_index, lessons.c.lesson)
    ).all()
    first = rows[0]
    enrolled = int(first.enrolled)
    completed = int(first.completed)
    figures_out = CourseProgress(
        enrolled=enrolled,
        started=int(first.started),
        completed=completed,
        completion_rate=round(completed / enrolled, 4) if enrolled else 0.0,
        average_percent=round(float(first.average_percent), 2),
        lessons=[
            LessonCompletion(lesson=r.lesson, title=r.title, completed=int(r.lesson_completed))
            for r in rows
            if r.lesson is not None
        ],
    )
    return figures_out, course.owner_id
