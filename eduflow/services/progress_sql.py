"""The statements of progress batches (``services.progress.record_progress_group``), built
once per dialect and bound with the batches' values.

A group of batches (one per enrollment) costs the same three statements as one batch: on
PostgreSQL lists travel as array parameters, so a statement's text and plan depend
neither on the batches' sizes nor on how many there are, and the writes are one statement
(data-modifying CTEs over ``unnest``). SQLite, where one writer at a time makes grouping
pointless, runs the statements batch by batch with expanding ``IN`` lists and one
executemany per table. Both write the same rows (``tests/test_models_sqlite.py`` records
one story on each).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    Connection,
    Integer,
    Row,
    Text,
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
from sqlmodel import col

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


@dataclass(frozen=True, slots=True)
class Write:
    """What one batch writes: the ids of its changing events, its rows and, when they moved,
    the enrollment's counters (completed lessons, completed at); ``completes``: this batch
    completes the course."""

    enrollment_id: int
    new_ids: list[uuid.UUID]
    changes: dict[int, Change]
    counters: tuple[int, datetime | None] | None
    completes: bool = False


@dataclass(slots=True)
class State:
    """What an enrollment has of a batch: its recorded event ids, and its rows for the
    batch's lessons (lesson -> completed?)."""

    recorded: set[uuid.UUID]
    done: dict[int, bool]


def _array(name: str, item: Any) -> Any:
    """An array parameter, sent as the text of an array literal (``ints_text``...)."""
    return cast(bindparam(name, type_=Text()), postgresql.ARRAY(item))


def ints_text(values: Iterable[int]) -> str:
    """The array literal of ints: one ``join`` per list. psycopg dumps a Python list element
    by element (a dumper call and a quoting check each), which was the largest single cost
    of recording a group; none of these values' texts needs quoting."""
    return "{" + ",".join(map(str, values)) + "}"


def uuids_text(values: Iterable[uuid.UUID]) -> str:
    """The array literal of UUIDs (32 hex digits each, as PostgreSQL reads them)."""
    return "{" + ",".join([value.hex for value in values]) + "}"


def times_text(values: Iterable[datetime | None]) -> str:
    """The array literal of aware datetimes (ISO 8601 with offset; None: NULL)."""
    return "{" + ",".join(["NULL" if v is None else v.isoformat() for v in values]) + "}"


def _pairs(left: str, right: str, left_type: Any, right_type: Any, alias: str) -> Any:
    """``unnest(:left, :right) AS alias(left, right)``: two arrays read side by side."""
    return (
        func.unnest(_array(left, left_type), _array(right, right_type))
        .table_valued(left, right)
        .render_derived(name=alias)
    )


def _flat(lists: Mapping[int, Sequence[Any]]) -> tuple[list[int], list[Any]]:
    """``{enrollment: [values]}`` as two parallel lists (enrollment per value, value)."""
    keys = [key for key, values in lists.items() for _ in values]
    return keys, [value for values in lists.values() for value in values]


# ------------------------------------------------------------------ 1: lock


def lock_enrollments(
    connection: Connection, lessons_of: Mapping[int, list[int]]
) -> dict[int, Row[Any]]:
    """Statement 1: each enrollment of ``lessons_of`` (locked in id order, latest version)
    with its course's figures and how many of its batch's lessons belong to the course.
    Enrollments that do not exist are missing from the answer."""
    if connection.dialect.name == "postgresql":
        enrollments, lessons = _flat(lessons_of)
        rows = connection.execute(
            _locked_pg(),
            {
                "enrollment_ids": ints_text(sorted(lessons_of)),
                "enrollment_id": ints_text(enrollments),
                "lesson_id": ints_text(lessons),
            },
        )
        return {row.id: row for row in rows}
    found: dict[int, Row[Any]] = {}
    for enrollment_id in sorted(lessons_of):
        row = connection.execute(
            _locked_sqlite(),
            {"enrollment_id": enrollment_id, "lesson_ids": lessons_of[enrollment_id]},
        ).one_or_none()
        if row is not None:
            found[enrollment_id] = row
    return found


def _locked_columns() -> list[Any]:
    return [
        col(Enrollment.id),
        col(Enrollment.student_id),
        col(Enrollment.status),
        col(Enrollment.course_id),
        col(Enrollment.completed_lessons),
        col(Enrollment.completed_at),
        col(Course.owner_id),
        col(Course.lessons_count),
    ]


@cache
def _locked_pg() -> Any:
    pairs = _pairs("enrollment_id", "lesson_id", Integer(), Integer(), "batch_lessons")
    valid = (
        select(func.count())
        .select_from(Lesson)
        .join(pairs, pairs.c.lesson_id == col(Lesson.id))
        .where(
            pairs.c.enrollment_id == col(Enrollment.id),
            col(Lesson.course_id) == col(Enrollment.course_id),
        )
        .scalar_subquery()
    )
    # ORDER BY before the lock: rows are locked in id order, so two groups sharing
    # enrollments wait for each other and never deadlock.
    return (
        select(*_locked_columns(), valid.label("valid_lessons"))
        .join(Course, col(Course.id) == col(Enrollment.course_id))
        .where(col(Enrollment.id) == any_(_array("enrollment_ids", Integer())))
        .order_by(col(Enrollment.id))
        .with_for_update(of=Enrollment.__table__, key_share=True)  # type: ignore[attr-defined]
    )


@cache
def _locked_sqlite() -> Any:
    valid = (
        select(func.count())
        .select_from(Lesson)
        .where(
            col(Lesson.course_id) == col(Enrollment.course_id),
            col(Lesson.id).in_(bindparam("lesson_ids", expanding=True)),
        )
        .scalar_subquery()
    )
    return (
        select(*_locked_columns(), valid.label("valid_lessons"))
        .join(Course, col(Course.id) == col(Enrollment.course_id))
        .where(col(Enrollment.id) == bindparam("enrollment_id"))
    )


# ------------------------------------------------------------------ 2: state


def recorded_and_rows(
    connection: Connection,
    events_of: Mapping[int, list[uuid.UUID]],
    lessons_of: Mapping[int, list[int]],
) -> dict[int, State]:
    """Statement 2 (after the lock, so it sees every batch committed before ours): which of
    each batch's event ids its enrollment has recorded, and the enrollment's rows for the
    batch's lessons."""
    states = {enrollment_id: State(set(), {}) for enrollment_id in events_of}
    if connection.dialect.name == "postgresql":
        event_enrollments, event_ids = _flat(events_of)
        lesson_enrollments, lesson_ids = _flat(lessons_of)
        rows: Any = connection.execute(
            _state_pg(),
            {
                "event_enrollment": ints_text(event_enrollments),
                "event_id": uuids_text(event_ids),
                "lesson_enrollment": ints_text(lesson_enrollments),
                "lesson_id": ints_text(lesson_ids),
            },
        ).all()
    else:
        rows = [
            (enrollment_id, *row)
            for enrollment_id in events_of
            for row in connection.execute(
                _state_sqlite(),
                {
                    "enrollment_id": enrollment_id,
                    "event_ids": events_of[enrollment_id],
                    "lesson_ids": lessons_of[enrollment_id],
                },
            )
        ]
    for enrollment_id, event_id, lesson_id, lesson_completed_at in rows:
        state = states[enrollment_id]
        if event_id is not None:
            state.recorded.add(event_id)
        else:
            state.done[lesson_id] = lesson_completed_at is not None
    return states


def _state_columns() -> tuple[list[Any], list[Any]]:
    """The recorded-event half and the rows half of the state's ``UNION ALL``."""
    events = [
        col(ProgressEvent.event_id),
        cast(null(), Integer).label("lesson_id"),
        cast(null(), UTCDateTime).label("completed_at"),
    ]
    rows = [
        cast(null(), Uuid).label("event_id"),
        col(LessonProgress.lesson_id),
        col(LessonProgress.completed_at),
    ]
    return events, rows


@cache
def _state_pg() -> Any:
    sent = _pairs("event_enrollment", "event_id", Integer(), Uuid(), "batch_events")
    asked = _pairs("lesson_enrollment", "lesson_id", Integer(), Integer(), "batch_lessons")
    event_columns, row_columns = _state_columns()
    recorded = select(col(ProgressEvent.enrollment_id), *event_columns).join(
        sent,
        (sent.c.event_enrollment == col(ProgressEvent.enrollment_id))
        & (sent.c.event_id == col(ProgressEvent.event_id)),
    )
    rows = select(col(LessonProgress.enrollment_id), *row_columns).join(
        asked,
        (asked.c.lesson_enrollment == col(LessonProgress.enrollment_id))
        & (asked.c.lesson_id == col(LessonProgress.lesson_id)),
    )
    return union_all(recorded, rows)


@cache
def _state_sqlite() -> Any:
    event_columns, row_columns = _state_columns()
    recorded = select(*event_columns).where(
        col(ProgressEvent.enrollment_id) == bindparam("enrollment_id"),
        col(ProgressEvent.event_id).in_(bindparam("event_ids", expanding=True)),
    )
    rows = select(*row_columns).where(
        col(LessonProgress.enrollment_id) == bindparam("enrollment_id"),
        col(LessonProgress.lesson_id).in_(bindparam("lesson_ids", expanding=True)),
    )
    return union_all(recorded, rows)


# ------------------------------------------------------------------ 3: write


def write_changes(connection: Connection, writes: Sequence[Write], now: datetime) -> None:
    """Statements 3-5 of every batch: the ids of the changing events, one upsert of the
    rows and the counters that moved.

    On PostgreSQL the three are one statement for the whole group: the two inserts read
    arrays (``unnest``) in data-modifying CTEs in front of the counters' update -- one
    round trip and one execution however many events and batches. SQLite: one
    executemany each, then the updates."""
    rows = [
        (write.enrollment_id, lesson_id, change)
        for write in writes
        for lesson_id, change in sorted(write.changes.items())
    ]
    # (enrollment, completed lessons, completed at) of the counters that moved
    counters = [(w.enrollment_id, *w.counters) for w in writes if w.counters is not None]
    if connection.dialect.name == "postgresql":
        connection.execute(
            _write_pg(),
            {
                "event_enrollment": ints_text(w.enrollment_id for w in writes for _ in w.new_ids),
                "event_id": uuids_text(event_id for w in writes for event_id in w.new_ids),
                "recorded_at": now,
                "row_enrollment": ints_text(enrollment_id for enrollment_id, _, _ in rows),
                "lesson_id": ints_text(lesson_id for _, lesson_id, _ in rows),
                "viewed": times_text(change.viewed_at for _, _, change in rows),
                "completed": times_text(change.completed_at for _, _, change in rows),
                "counted_id": ints_text(enrollment_id for enrollment_id, _, _ in counters),
                "counted_lessons": ints_text(lessons for _, lessons, _ in counters),
                "counted_at": times_text(completed_at for _, _, completed_at in counters),
            },
        )
        return
    connection.execute(
        _insert_events(),
        [
            {"enrollment_id": w.enrollment_id, "event_id": i, "recorded_at": now}
            for w in writes
            for i in w.new_ids
        ],
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
            for enrollment_id, lesson_id, change in rows
        ],
    )
    for enrollment_id, lessons, completed_at in counters:
        connection.execute(
            update(Enrollment)
            .where(col(Enrollment.id) == enrollment_id)
            .values(completed_lessons=lessons, completed_at=completed_at)
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
        return func.unnest(_array(name, item))

    event_rows = select(
        unnest("event_enrollment", Integer()),
        unnest("event_id", Uuid()),
        bindparam("recorded_at", type_=UTCDateTime),
    )
    events = (
        postgresql.insert(ProgressEvent)
        .from_select(["enrollment_id", "event_id", "recorded_at"], event_rows)
        .on_conflict_do_nothing()
        .cte("new_events")
    )
    lesson_rows = select(
        unnest("row_enrollment", Integer()),
        unnest("lesson_id", Integer()),
        unnest("viewed", UTCDateTime()),
        unnest("completed", UTCDateTime()),
    )
    columns = ["enrollment_id", "lesson_id", "viewed_at", "completed_at"]
    upserted = _upsert_rows(postgresql.insert(LessonProgress).from_select(columns, lesson_rows))
    counters = (
        func.unnest(
            _array("counted_id", Integer()),
            _array("counted_lessons", Integer()),
            _array("counted_at", UTCDateTime()),
        )
        .table_valued("id", "completed_lessons", "completed_at")
        .render_derived(name="counters")
    )
    return (
        update(Enrollment)
        .where(col(Enrollment.id) == counters.c.id)
        .values(
            completed_lessons=counters.c.completed_lessons,
            completed_at=counters.c.completed_at,
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
