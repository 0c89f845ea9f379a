"""The statements of a progress batch (``services.progress.record_progress``), built once
per dialect and bound with the batch's values.

On PostgreSQL lists travel as array parameters, so a statement's text and plan do not
depend on the batch's size, and the writes are one statement (data-modifying CTEs over
``unnest``); SQLite gets expanding ``IN`` lists and one executemany per table. Both
write the same rows (``tests/test_models_sqlite.py`` records one story on each).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    Boolean,
    Integer,
    Uuid,
    any_,
    bindparam,
    cast,
    func,
    null,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from eduflow.models._base import UTCDateTime
from eduflow.models.courses import Course
from eduflow.models.enrollments import Enrollment
from eduflow.models.lessons import Lesson
from eduflow.models.progress import LessonProgress, ProgressEvent


@dataclass(frozen=True, slots=True)
class Change:
    """The progress row one lesson gets from a batch."""

    viewed_at: datetime
    completed_at: datetime | None


def _any_of(column: Any, name: str, dialect: str) -> Any:
    """``column`` is one of the list bound as ``name``: one array parameter on PostgreSQL
    (the statement's text and plan do not depend on the list's length), an expanding
    ``IN`` elsewhere."""
    if dialect == "postgresql":
        return column == any_(bindparam(name, type_=postgresql.ARRAY(column.type)))
    return column.in_(bindparam(name, expanding=True))


@cache
def locked_enrollment(dialect: str) -> Any:
    """Statement 1: the enrollment (locked, latest version), its course's figures and the
    number of the batch's lessons that belong to the course. Built once per dialect; bound
    with ``enrollment_id`` and ``lesson_ids``."""
    valid = (
        select(func.count())
        .select_from(Lesson)
        .where(
            col(Lesson.course_id) == col(Enrollment.course_id),
            _any_of(col(Lesson.id), "lesson_ids", dialect),
        )
        .scalar_subquery()
    )
    return (
        select(
            col(Enrollment.student_id),
            col(Enrollment.status),
            col(Enrollment.course_id),
            col(Enrollment.completed_lessons),
            col(Enrollment.completed_at),
            col(Course.owner_id),
            col(Course.lessons_count),
            valid.label("valid_lessons"),
        )
        .join(Course, col(Course.id) == col(Enrollment.course_id))
        .where(col(Enrollment.id) == bindparam("enrollment_id"))
        .with_for_update(of=Enrollment.__table__, key_share=True)  # type: ignore[attr-defined]
    )


@cache
def recorded_and_rows(dialect: str) -> Any:
    """Statement 2 (after the lock, so it sees every batch committed before ours): which
    of the batch's event ids are recorded, and the enrollment's rows for its lessons.
    Bound with ``enrollment_id``, ``event_ids`` and ``lesson_ids``."""
    recorded = select(
        col(ProgressEvent.event_id),
        cast(null(), Integer).label("lesson_id"),
        cast(null(), UTCDateTime).label("completed_at"),
    ).where(
        col(ProgressEvent.enrollment_id) == bindparam("enrollment_id"),
        _any_of(col(ProgressEvent.event_id), "event_ids", dialect),
    )
    rows = select(
        cast(null(), Uuid).label("event_id"),
        col(LessonProgress.lesson_id),
        col(LessonProgress.completed_at),
    ).where(
        col(LessonProgress.enrollment_id) == bindparam("enrollment_id"),
        _any_of(col(LessonProgress.lesson_id), "lesson_ids", dialect),
    )
    return union_all(recorded, rows)


def write_changes(
    session: Session,
    enrollment_id: int,
    changes: dict[int, Change],
    new_ids: list[uuid.UUID],
    now: datetime,
    counters: tuple[int, datetime | None] | None,
) -> None:
    """Statements 3-5: the ids of the changing events, one upsert of the rows and, when
    they moved, the enrollment's counters (``counters``: completed lessons, completed at).

    On PostgreSQL the three are one statement: the two inserts read arrays (``unnest``)
    in data-modifying CTEs in front of the counters' update -- one round trip and one
    execution however many events. Elsewhere: one executemany each, then the update."""
    connection = session.connection()
    rows = sorted(changes.items())
    if connection.dialect.name == "postgresql":
        completed_lessons, completed_at = counters or (0, None)
        connection.execute(
            _write_pg(),
            {
                "enrollment_id": enrollment_id,
                "event_ids": new_ids,
                "recorded_at": now,
                "lesson_ids": [lesson_id for lesson_id, _ in rows],
                "viewed": [change.viewed_at for _, change in rows],
                "completed": [change.completed_at for _, change in rows],
                "counted": counters is not None,
                "new_completed_lessons": completed_lessons,
                "new_completed_at": completed_at,
            },
        )
        return
    connection.execute(
        _insert_events(),
        [{"enrollment_id": enrollment_id, "event_id": i, "recorded_at": now} for i in new_ids],
    )
    connection.execute(
        _upsert_rows_sqlite(),
        [
            {
                "enrollment_id": enrollment_id,
                "lesson_id": lesson_id,
                "viewed_at": change.viewed_at,
                "completed_at": change.completed_at,
            }
            for lesson_id, change in rows
        ],
    )
    if counters is not None:
        connection.execute(
            update(Enrollment)
            .where(col(Enrollment.id) == enrollment_id)
            .values(completed_lessons=counters[0], completed_at=counters[1])
        )


@cache
def _insert_events() -> Any:
    return sqlite.insert(ProgressEvent).on_conflict_do_nothing()


@cache
def _upsert_rows_sqlite() -> Any:
    return _upsert_rows(sqlite.insert(LessonProgress))


@cache
def _write_pg() -> Any:
    """Statements 3-5 as one (see ``write_changes``), built once."""

    def unnest(name: str, item: Any) -> Any:
        return func.unnest(bindparam(name, type_=postgresql.ARRAY(item)))

    event_rows = select(
        bindparam("enrollment_id"),
        unnest("event_ids", Uuid()),
        bindparam("recorded_at", type_=UTCDateTime),
    )
    events = (
        postgresql.insert(ProgressEvent)
        .from_select(["enrollment_id", "event_id", "recorded_at"], event_rows)
        .on_conflict_do_nothing()
        .cte("new_events")
    )
    lesson_rows = select(
        bindparam("enrollment_id"),
        unnest("lesson_ids", Integer()),
        unnest("viewed", UTCDateTime()),
        unnest("completed", UTCDateTime()),
    )
    columns = ["enrollment_id", "lesson_id", "viewed_at", "completed_at"]
    upserted = _upsert_rows(postgresql.insert(LessonProgress).from_select(columns, lesson_rows))
    return (
        update(Enrollment)
        .where(
            col(Enrollment.id) == bindparam("enrollment_id"),
            bindparam("counted", type_=Boolean),
        )
        .values(
            completed_lessons=bindparam("new_completed_lessons"),
            completed_at=bindparam("new_completed_at", type_=UTCDateTime),
        )
        .add_cte(events)
        .add_cte(upserted.cte("new_rows"))
    )


def _upsert_rows(stmt: Any) -> Any:
    """A new row, or the completion of an existing one (never undone: ``WHERE ... IS NULL``)."""
    return stmt.on_conflict_do_update(
        index_elements=["enrollment_id", "lesson_id"],
        set_={"completed_at": stmt.excluded.completed_at},
        where=col(LessonProgress.completed_at).is_(None),
    )
