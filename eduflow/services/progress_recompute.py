"""``eduflow progress recompute``: the maintained counters, recomputed from the rows.

Every batch keeps ``completed_lessons`` equal to the enrollment's completed progress
rows, and sets ``completed_at`` when they cover the course; this proves it (or finds
where it does not hold) by recomputing both from ``lesson_progress`` in keyset pages of
enrollments, and repairs the differences when asked. Expected differences: none.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, update
from sqlmodel import Session, col

from eduflow.models.courses import Course
from eduflow.models.enrollments import Enrollment, EnrollmentStatus
from eduflow.models.progress import LessonProgress
from eduflow.services.progress import complete_finished, is_complete

PAGE = 5000


@dataclass(frozen=True, slots=True)
class Difference:
    """One counter that does not match its rows."""

    enrollment: int
    course: int
    field: str
    stored: Any
    computed: Any

    def as_dict(self) -> dict[str, Any]:
        """Stable keys for ``--json``."""
        return {
            "enrollment": self.enrollment,
            "course": self.course,
            "field": self.field,
            "stored": self.stored,
            "computed": self.computed,
        }


@dataclass(slots=True)
class Recomputed:
    """What a run checked, found and repaired."""

    checked: int = 0
    differences: list[Difference] = field(default_factory=list)
    fixed: int = 0


def enrollments_to_check(session: Session, course_id: int | None = None) -> int:
    """How many enrollments a run looks at (for a progress bar)."""
    stmt = select(func.count()).select_from(Enrollment)
    if course_id is not None:
        stmt = stmt.where(col(Enrollment.course_id) == course_id)
    return int(session.execute(stmt).scalar() or 0)


def _computed_completed() -> Any:
    return (
        select(func.count())
        .select_from(LessonProgress)
        .where(
            col(LessonProgress.enrollment_id) == col(Enrollment.id),
            col(LessonProgress.completed_at).is_not(None),
        )
        .scalar_subquery()
    )


def compare(row: Any) -> list[Difference]:
    """The differences of one enrollment's stored figures from its recomputed ones.

    A ``completed_at`` set while lessons remain is not one: lessons added after the
    completion never take it back.
    """
    found = []
    if row.completed_lessons != row.computed:
        found.append(
            Difference(
                row.id, row.course_id, "completed_lessons", row.completed_lessons, row.computed
            )
        )
    finished = row.status == EnrollmentStatus.active.value and is_complete(
        row.computed, row.lessons_count
    )
    if row.completed_at is None and finished:
        found.append(Difference(row.id, row.course_id, "completed_at", None, "set"))
    return found


def recompute(
    session: Session,
    *,
    course_id: int | None = None,
    fix: bool = False,
    advance: Callable[[int], None] | None = None,
) -> Recomputed:
    """Recompute every enrollment's counters (of ``course_id`` when given) and report each
    difference; ``fix`` repairs them in the caller's transaction, each enrollment under
    its row lock, and completes the enrollments whose rows cover their course (with the
    ``course_completed`` job, as a batch would have)."""
    result = Recomputed()
    last_id = 0
    while True:
        stmt = (
            select(
                col(Enrollment.id),
                col(Enrollment.course_id),
                col(Enrollment.status),
                col(Enrollment.completed_lessons),
                col(Enrollment.completed_at),
                col(Course.lessons_count),
                _computed_completed().label("computed"),
            )
            .join(Course, col(Course.id) == col(Enrollment.course_id))
            .where(col(Enrollment.id) > last_id)
            .order_by(col(Enrollment.id))
            .limit(PAGE)
        )
        if course_id is not None:
            stmt = stmt.where(col(Enrollment.course_id) == course_id)
        rows = session.execute(stmt).all()
        if not rows:
            break
        last_id = rows[-1].id
        result.checked += len(rows)
        for row in rows:
            result.differences.extend(compare(row))
        if advance is not None:
            advance(len(rows))
    if fix and result.differences:
        result.fixed = _repair(session, result.differences)
    return result


def _repair(session: Session, differences: list[Difference]) -> int:
    """Set the counters from the rows under each enrollment's lock, then complete the
    finished ones course by course."""
    ids = sorted({d.enrollment for d in differences})
    connection = session.connection()
    connection.execute(
        select(col(Enrollment.id))
        .where(col(Enrollment.id).in_(ids))
        .order_by(col(Enrollment.id))
        .with_for_update(key_share=True)
    ).all()
    # A statement of its own after the lock: its snapshot sees every batch committed first.
    connection.execute(
        update(Enrollment)
        .where(col(Enrollment.id).in_(ids))
        .values(completed_lessons=_computed_completed())
    )
    for course in sorted({d.course for d in differences}):
        complete_finished(session, course)
    return len(ids)
