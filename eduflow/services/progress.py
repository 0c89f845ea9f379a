"""Learning progress: recording event batches, completing courses, reading progress.

Recording a batch (``record_progress``) is one transaction with a constant number of
statements whatever the batch size (at most six, fewer when nothing changes):

1. read the enrollment, its course's figures and how many of the batch's lessons belong
   to the course, locking the enrollment row (``FOR NO KEY UPDATE``): batches of one
   enrollment take turns, so the counters and the completion are decided on fresh data;
2. which of the batch's event ids are already recorded, and the enrollment's progress
   rows for the batch's lessons (one ``UNION ALL``);
3. insert the ids of the events that change something, 4. upsert the progress rows they
   change, 5. update the counters (and ``completed_at`` once), 6. the ``course_completed``
   outbox row.

Events that change nothing (a duplicate, a second ``viewed``, anything on a completed
lesson) write no row at all, their ids included: replaying them is harmless forever,
because progress only moves forward. A resent batch therefore runs statements 1-2 only.

Lock order: lesson deletion locks the course, then every enrollment of the course, then
deletes the lesson (see ``before_lesson_deleted``); a batch locks its enrollment, then
references lessons. Enrollment before lesson on both sides: they wait, never deadlock.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import (
    Boolean,
    Integer,
    Uuid,
    any_,
    bindparam,
    case,
    cast,
    exists,
    func,
    literal_column,
    null,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from eduflow.cache.progress import invalidate_course_progress
from eduflow.db import on_commit
from eduflow.errors import Conflict, Forbidden, Invalid, NotFound
from eduflow.models._base import UTCDateTime, utcnow
from eduflow.models.courses import Course
from eduflow.models.enrollments import Enrollment, EnrollmentStatus
from eduflow.models.lessons import Lesson
from eduflow.models.progress import (
    CourseProgress,
    EventKind,
    LessonCompletion,
    LessonProgress,
    LessonProgressPublic,
    ProgressBatch,
    ProgressEvent,
    ProgressResult,
    progress_summary,
)
from eduflow.outbox import record_job
from eduflow.services.certificates import Issued, issue_certificate
from eduflow.services.courses import get_visible_course, parse_input
from eduflow.services.permissions import Principal, is_owner_or_admin, require_authenticated

COMPLETED_JOB = "course_completed"
# A client clock a little ahead is not "the future": its events are recorded at our now.
CLOCK_SKEW = timedelta(seconds=60)


def is_complete(completed_lessons: Any, total_lessons: Any) -> Any:
    """The completion rule, for Python ints and SQL expressions alike: every lesson of a
    course that has lessons is completed."""
    return (total_lessons > 0) & (completed_lessons >= total_lessons)


@dataclass(frozen=True, slots=True)
class _Change:
    """The progress row one lesson gets from a batch."""

    viewed_at: datetime
    completed_at: datetime | None


def record_progress(
    session: Session,
    actor: Principal | None,
    enrollment_id: int,
    data: ProgressBatch | Mapping[str, Any],
) -> ProgressResult:
    """Record a batch of events for the caller's active enrollment (see the module doc).

    404 for an enrollment the caller may not see, 403 for one they see but is not theirs
    or not active, 422 (nothing written) for an event in the future or a lesson outside
    the enrollment's course.
    """
    actor = require_authenticated(actor)
    batch = parse_input(ProgressBatch, data)
    now = utcnow()
    _refuse_future(batch, now)
    lesson_ids = sorted({event.lesson for event in batch.events})
    connection = session.connection()
    dialect = connection.dialect.name
    row = connection.execute(
        _locked_enrollment(dialect), {"enrollment_id": enrollment_id, "lesson_ids": lesson_ids}
    ).one_or_none()
    if row is None:
        raise NotFound(f"No enrollment with id {enrollment_id}")
    if row.student_id != actor.id:
        if is_owner_or_admin(actor, row.owner_id):
            raise Forbidden("Only the enrolled student records progress")
        raise NotFound(f"No enrollment with id {enrollment_id}")
    if row.status != EnrollmentStatus.active.value:
        raise Forbidden(f"Enrollment {enrollment_id} is {row.status}; progress needs an active one")
    if row.valid_lessons != len(lesson_ids):
        _refuse_foreign_lessons(session, batch, row.course_id)

    recorded: set[uuid.UUID] = set()
    done: dict[int, bool] = {}  # lesson -> completed? (rows the enrollment has)
    state = {
        "enrollment_id": enrollment_id,
        "event_ids": [e.event_id for e in batch.events],
        "lesson_ids": lesson_ids,
    }
    for event_id, lesson_id, lesson_completed_at in connection.execute(
        _recorded_and_rows(dialect), state
    ):
        if event_id is not None:
            recorded.add(event_id)
        else:
            done[lesson_id] = lesson_completed_at is not None
    changes, new_ids, accepted = _apply(batch, recorded, done, now)

    completed_lessons = int(row.completed_lessons)
    completed_at: datetime | None = row.completed_at
    if changes:
        newly_completed = sum(
            1 for lesson_id, c in changes.items() if c.completed_at and not done.get(lesson_id)
        )
        completed_lessons += newly_completed
        completes = completed_at is None and is_complete(completed_lessons, row.lessons_count)
        if completes:
            completed_at = now
        counters = (completed_lessons, completed_at) if newly_completed or completes else None
        _write_changes(session, enrollment_id, changes, new_ids, now, counters)
        if completes:
            record_job(session, COMPLETED_JOB, enrollment_id=enrollment_id)
        invalidate_course_progress(session, row.course_id)
    duplicates = len(batch.events) - accepted
    _count_after_commit(session, accepted, duplicates, completed=completed_at == now)
    return ProgressResult(
        enrollment=enrollment_id,
        progress=progress_summary(completed_lessons, row.lessons_count),
        completed_at=completed_at,
        accepted=accepted,
        duplicates=duplicates,
    )


def _refuse_future(batch: ProgressBatch, now: datetime) -> None:
    errors = [
        {"field": f"events.{i}.at", "message": "is in the future"}
        for i, event in enumerate(batch.events)
        if event.at is not None and event.at > now + CLOCK_SKEW
    ]
    if errors:
        raise Invalid(
            f"{len(errors)} event(s) dated in the future; nothing was recorded", errors=errors
        )


def _refuse_foreign_lessons(session: Session, batch: ProgressBatch, course_id: int) -> None:
    own = set(
        session.connection()
        .execute(
            select(col(Lesson.id)).where(
                col(Lesson.course_id) == course_id,
                col(Lesson.id).in_({event.lesson for event in batch.events}),
            )
        )
        .scalars()
    )
    errors = [
        {
            "field": f"events.{i}.lesson",
            "message": f"lesson {event.lesson} is not in course {course_id}",
        }
        for i, event in enumerate(batch.events)
        if event.lesson not in own
    ]
    raise Invalid(
        f"{len(errors)} event(s) name lessons outside the course; nothing was recorded",
        errors=errors,
    )


def _any_of(column: Any, name: str, dialect: str) -> Any:
    """``column`` is one of the list bound as ``name``: one array parameter on PostgreSQL
    (the statement's text and plan do not depend on the list's length), an expanding
    ``IN`` elsewhere."""
    if dialect == "postgresql":
        return column == any_(bindparam(name, type_=postgresql.ARRAY(column.type)))
    return column.in_(bindparam(name, expanding=True))


@cache
def _locked_enrollment(dialect: str) -> Any:
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
def _recorded_and_rows(dialect: str) -> Any:
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


def _apply(
    batch: ProgressBatch, recorded: set[uuid.UUID], done: dict[int, bool], now: datetime
) -> tuple[dict[int, _Change], list[uuid.UUID], int]:
    """Play the batch, in order, over the current state: the rows to write, the ids of the
    events that change something, and how many events were new (not duplicates)."""
    state = dict(done)  # lesson -> completed?
    changes: dict[int, _Change] = {}
    new_ids: list[uuid.UUID] = []
    seen: set[uuid.UUID] = set()
    accepted = 0
    for event in batch.events:
        if event.event_id in recorded or event.event_id in seen:
            continue
        seen.add(event.event_id)
        accepted += 1
        at = min(event.at, now) if event.at is not None else now
        completes = event.kind is EventKind.completed
        if event.lesson not in state:
            changes[event.lesson] = _Change(at, at if completes else None)
        elif completes and not state[event.lesson]:
            before = changes.get(event.lesson)
            viewed_at = before.viewed_at if before else at
            changes[event.lesson] = _Change(viewed_at, at)
        else:
            continue  # changes nothing: not even its id is written
        state[event.lesson] = completes or state.get(event.lesson, False)
        new_ids.append(event.event_id)
    return changes, new_ids, accepted


def _write_changes(
    session: Session,
    enrollment_id: int,
    changes: dict[int, _Change],
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
    """Statements 3-5 as one (see ``_write_changes``), built once."""

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


def _count_after_commit(session: Session, accepted: int, duplicates: int, completed: bool) -> None:
    from eduflow.metrics import COURSE_COMPLETIONS, PROGRESS_EVENTS

    def count() -> None:
        if accepted:
            PROGRESS_EVENTS.labels("accepted").inc(accepted)
        if duplicates:
            PROGRESS_EVENTS.labels("duplicate").inc(duplicates)
        if completed:
            COURSE_COMPLETIONS.inc()

    on_commit(session, count)


# --------------------------------------------------------------------------- lessons


def before_lesson_deleted(session: Session, course_id: int, lesson_id: int) -> None:
    """Deleting a lesson (the course row already locked by the caller): lock the course's
    enrollments, take the lesson's completions off their counters, and complete the
    enrollments that, without it, have every remaining lesson done.

    The progress rows themselves go with the lesson (``ON DELETE CASCADE``).
    """
    connection = session.connection()
    connection.execute(
        select(col(Enrollment.id))
        .where(col(Enrollment.course_id) == course_id)
        .order_by(col(Enrollment.id))
        .with_for_update(key_share=True)
    ).all()
    completed_it = (
        select(col(LessonProgress.enrollment_id))
        .where(
            col(LessonProgress.lesson_id) == lesson_id,
            col(LessonProgress.completed_at).is_not(None),
        )
        .scalar_subquery()
    )
    connection.execute(
        update(Enrollment)
        .where(col(Enrollment.id).in_(completed_it))
        .values(completed_lessons=col(Enrollment.completed_lessons) - 1)
    )
    invalidate_course_progress(session, course_id)


def complete_finished(session: Session, course_id: int) -> int:
    """Give ``completed_at`` (and the ``course_completed`` job) to every active enrollment of
    the course that has completed all its lessons but has no ``completed_at`` yet (after a
    lesson deletion, or when ``progress recompute --fix`` repairs counters)."""
    lessons_count = select(col(Course.lessons_count)).where(col(Course.id) == course_id)
    total = lessons_count.scalar_subquery()
    now = utcnow()
    statement = (
        update(Enrollment)
        .where(
            col(Enrollment.course_id) == course_id,
            col(Enrollment.status) == EnrollmentStatus.active.value,
            col(Enrollment.completed_at).is_(None),
            is_complete(col(Enrollment.completed_lessons), total),
        )
        .values(completed_at=now)
        .returning(col(Enrollment.id))
    )
    finished = [int(i) for i in session.connection().execute(statement).scalars() if i]
    for enrollment_id in sorted(finished):
        record_job(session, COMPLETED_JOB, enrollment_id=enrollment_id)
    if finished:
        from eduflow.metrics import COURSE_COMPLETIONS

        on_commit(session, lambda: COURSE_COMPLETIONS.inc(len(finished)))
    return len(finished)


# --------------------------------------------------------------------------- reads


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


# --------------------------------------------------------------------------- completion


def issue_completion_certificate(session: Session, enrollment_id: int) -> Issued | None:
    """The certificate issuer that the ``course_completed`` job calls first: the
    enrollment's certificate (issued now or before), None when the enrollment is gone or
    not completed (nothing to issue).

    This is the one place where a completion becomes a certificate; the rule itself (one
    per student and course, ever, whatever runs concurrently) is
    ``services.certificates.issue_certificate``.
    """
    try:
        return issue_certificate(session, enrollment_id)
    except (NotFound, Conflict):  # gone, or not completed: there is nothing to certify
        return None
