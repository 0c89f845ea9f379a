"""Demo learning progress: some students not started, many part-way, some finished.

Runs after the demo enrollments are in (it reads them back, so it does not care how they
were inserted), writes the progress rows in multi-row inserts and then sets every
enrollment's counters from those rows in one set-based ``UPDATE``: the counters agree
with ``eduflow progress recompute`` by construction. Finished demo enrollments count as
already congratulated (``completion_email_sent_at``): seeding sends no email.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, case, func, insert, select, update
from sqlmodel import Session, col

from eduflow.models.courses import Course
from eduflow.models.enrollments import Enrollment, EnrollmentStatus
from eduflow.models.lessons import Lesson
from eduflow.models.progress import LessonProgress

BATCH_SIZE = 2000
NOT_STARTED, PART_WAY = 0.25, 0.55  # the rest finished


@dataclass(slots=True)
class DemoProgress:
    """What was seeded."""

    rows: int = 0
    started: int = 0
    completed: int = 0


def seed_progress(
    session: Session,
    rng: random.Random,
    now: datetime,
    report: Callable[[str, int], None] | None = None,
) -> DemoProgress:
    """Progress for every active enrollment of the database, deterministic for ``rng``."""
    lessons: dict[int, list[int]] = {}
    for course_id, lesson_id in session.execute(
        select(col(Lesson.course_id), col(Lesson.id)).order_by(
            col(Lesson.course_id), col(Lesson.order_index), col(Lesson.id)
        )
    ):
        lessons.setdefault(course_id, []).append(lesson_id)
    enrollments = session.execute(
        select(col(Enrollment.id), col(Enrollment.course_id), col(Enrollment.created_at))
        .where(col(Enrollment.status) == EnrollmentStatus.active.value)
        .order_by(col(Enrollment.id))
    ).all()
    result = DemoProgress()
    rows: list[dict[str, Any]] = []
    for enrollment_id, course_id, created_at in enrollments:
        course_lessons = lessons.get(course_id, [])
        roll = rng.random()
        if not course_lessons or roll < NOT_STARTED:
            continue
        result.started += 1
        count = len(course_lessons)
        done = count if roll >= NOT_STARTED + PART_WAY else rng.randint(0, count - 1)
        viewed = min(count, done + rng.randint(0, 1)) or 1
        span = max((now - created_at).total_seconds(), 60.0)
        at = created_at
        for index, lesson_id in enumerate(course_lessons[:viewed]):
            at = min(at + timedelta(seconds=rng.uniform(0, span / (count + 1))), now)
            at = at.replace(microsecond=0)
            rows.append(
                {
                    "enrollment_id": enrollment_id,
                    "lesson_id": lesson_id,
                    "viewed_at": at,
                    "completed_at": min(at + timedelta(minutes=rng.randint(5, 45)), now)
                    if index < done
                    else None,
                }
            )
        if done == count:
            result.completed += 1
    table: Table = LessonProgress.__table__  # type: ignore[attr-defined]
    for start in range(0, len(rows), BATCH_SIZE):
        batch = rows[start : start + BATCH_SIZE]
        session.execute(insert(table), batch)
        if report is not None:
            report("progress", len(batch))
    result.rows = len(rows)
    _counters_from_rows(session, sorted({row["enrollment_id"] for row in rows}))
    return result


def _counters_from_rows(session: Session, enrollment_ids: list[int]) -> None:
    """Every enrollment's ``completed_lessons`` (and, when it covers the course,
    ``completed_at``) from its progress rows: set-based, one statement per id range."""
    for start in range(0, len(enrollment_ids), BATCH_SIZE):
        chunk = enrollment_ids[start : start + BATCH_SIZE]
        low, high = chunk[0], chunk[-1]
        figures = (
            select(
                col(LessonProgress.enrollment_id),
                func.count(col(LessonProgress.completed_at)).label("done"),
                func.max(col(LessonProgress.completed_at)).label("last"),
            )
            .where(col(LessonProgress.enrollment_id).between(low, high))
            .group_by(col(LessonProgress.enrollment_id))
            .subquery()
        )
        finished = case((figures.c.done >= col(Course.lessons_count), figures.c.last), else_=None)
        session.execute(
            update(Enrollment)
            .where(
                col(Enrollment.id) == figures.c.enrollment_id,
                col(Course.id) == col(Enrollment.course_id),
            )
            .values(
                completed_lessons=figures.c.done,
                completed_at=finished,
                completion_email_sent_at=finished,
            )
        )
