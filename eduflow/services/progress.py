"""Learning progress: recording event batches and completing courses (reads are in
``progress_reads``, the batch's statements in ``progress_sql``).

Recording a batch (``record_progress``) is one transaction with a constant number of
statements whatever the batch size (at most six, fewer when nothing changes; on
PostgreSQL 3-5 are one statement). A group of batches of distinct enrollments
(``record_progress_group``, which ``record_progress`` calls with a group of one) runs the
same statements once for the whole group, each bound with every batch's values:

1. read the enrollments, their courses' figures and how many of each batch's lessons
   belong to its course, locking the enrollment rows (``FOR NO KEY UPDATE``, in id
   order): batches of one enrollment take turns, so the counters and the completion are
   decided on fresh data;
2. which of each batch's event ids are already recorded, and the enrollments' progress
   rows for the batches' lessons (one ``UNION ALL``);
3. insert the ids of the events that change something, 4. upsert the progress rows they
   change, 5. update the counters (and ``completed_at`` once), 6. a ``course_completed``
   outbox row per completion.

Each batch is decided alone on its enrollment's state (``_check``, ``_decide``), so a
batch's answer does not depend on the group it came in; a refused batch writes nothing.

Events that change nothing (a duplicate, a second ``viewed``, anything on a completed
lesson) write no row at all, their ids included: replaying them is harmless forever,
because progress only moves forward. A resent batch therefore runs statements 1-2 only.

Lock order: lesson deletion locks the course, then every enrollment of the course (in id
order), then deletes the lesson (see ``before_lesson_deleted``); a group locks its
enrollments in id order, then references lessons. Enrollments before lessons and in id
order on both sides: they wait, never deadlock.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    select,
    update,
)
from sqlmodel import Session, col

from eduflow.cache.progress import invalidate_course_progress
from eduflow.db import on_commit
from eduflow.errors import Conflict, EduFlowError, Forbidden, Invalid, NotFound
from eduflow.logging import current_request_id
from eduflow.models._base import utcnow
from eduflow.models.courses import Course
from eduflow.models.enrollments import Enrollment, EnrollmentStatus
from eduflow.models.lessons import Lesson
from eduflow.models.outbox import OutboxJob
from eduflow.models.progress import (
    EventKind,
    LessonProgress,
    ProgressBatch,
    ProgressResult,
    progress_summary,
)
from eduflow.outbox import record_job
from eduflow.outbox.record import record_row
from eduflow.services.certificates import Issued, issue_certificate
from eduflow.services.courses import parse_input
from eduflow.services.permissions import Principal, is_owner_or_admin, require_authenticated
from eduflow.services.progress_sql import (
    Change,
    State,
    Write,
    lock_enrollments,
    recorded_and_rows,
    write_changes,
)
from eduflow.tracing import current_trace_context

COMPLETED_JOB = "course_completed"
# A client clock a little ahead is not "the future": its events are recorded at our now.
CLOCK_SKEW = timedelta(seconds=60)


def is_complete(completed_lessons: Any, total_lessons: Any) -> Any:
    """The completion rule, for Python ints and SQL expressions alike: every lesson of a
    course that has lessons is completed."""
    return (total_lessons > 0) & (completed_lessons >= total_lessons)


@dataclass(frozen=True, slots=True)
class BatchCall:
    """One batch of a group: who sends it, for which enrollment, and the request it came in
    with (its id and trace go with the outbox row of a completion, as ``record_job``'s do)."""

    actor: Principal | None
    enrollment_id: int
    data: ProgressBatch | Mapping[str, Any]
    request_id: str | None = None
    trace_context: str | None = None


Outcome = ProgressResult | EduFlowError


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
    call = BatchCall(actor, enrollment_id, data, current_request_id(), current_trace_context())
    (outcome,) = record_progress_group(session, [call])
    if isinstance(outcome, EduFlowError):
        raise outcome
    return outcome


def record_progress_group(session: Session, calls: Sequence[BatchCall]) -> list[Outcome]:
    """Record several batches, of distinct enrollments, in the caller's transaction with the
    statements of one: each batch's outcome is what ``record_progress`` alone would answer
    (its result, or the error it would raise); a refused batch writes nothing.

    The write fast path groups concurrent batches this way (``eduflow.api.progress_groups``):
    a lock, a read and a write for the whole group, one commit, one cache invalidation.
    """
    now = utcnow()
    outcomes: list[Outcome | None] = [None] * len(calls)
    # enrollment -> (its call's index, the caller, the batch, its lessons)
    ready: dict[int, tuple[int, Principal, ProgressBatch, list[int]]] = {}
    for i, call in enumerate(calls):
        if call.enrollment_id in ready:
            raise ValueError(f"enrollment {call.enrollment_id} twice in one group")
        try:
            actor = require_authenticated(call.actor)
            batch = parse_input(ProgressBatch, call.data)
            _refuse_future(batch, now)
        except EduFlowError as exc:
            outcomes[i] = exc
            continue
        lesson_ids = sorted({event.lesson for event in batch.events})
        ready[call.enrollment_id] = (i, actor, batch, lesson_ids)
    connection = session.connection()
    locked = (
        lock_enrollments(connection, {e: lessons for e, (*_, lessons) in ready.items()})
        if ready
        else {}
    )
    for enrollment_id, (i, actor, batch, lesson_ids) in list(ready.items()):
        try:
            _check(session, actor, enrollment_id, locked.get(enrollment_id), batch, lesson_ids)
        except EduFlowError as exc:
            outcomes[i] = exc
            del ready[enrollment_id]
    states = (
        recorded_and_rows(
            connection,
            {
                e: [event.event_id for event in batch.events]
                for e, (_, _, batch, _) in ready.items()
            },
            {e: lessons for e, (*_, lessons) in ready.items()},
        )
        if ready
        else {}
    )
    writes: list[Write] = []
    completed: list[BatchCall] = []
    courses: set[int] = set()
    for enrollment_id, (i, _, batch, _) in ready.items():
        row = locked[enrollment_id]
        outcomes[i], write = _decide(enrollment_id, row, batch, states[enrollment_id], now)
        if write is not None:
            writes.append(write)
            courses.add(row.course_id)
            if write.completes:
                completed.append(calls[i])
    if writes:
        write_changes(connection, writes, now)
    for call in completed:
        record_row(
            session,
            OutboxJob(
                job_name=COMPLETED_JOB,
                args={"enrollment_id": call.enrollment_id},
                request_id=call.request_id,
                trace_context=call.trace_context,
            ),
        )
    for course_id in sorted(courses):
        invalidate_course_progress(session, course_id)
    results = [o for o in outcomes if isinstance(o, ProgressResult)]
    _count_after_commit(
        session,
        sum(r.accepted for r in results),
        sum(r.duplicates for r in results),
        completed=len(completed),
    )
    assert all(o is not None for o in outcomes)
    return outcomes  # type: ignore[return-value]


def _check(
    session: Session,
    actor: Principal,
    enrollment_id: int,
    row: Any,
    batch: ProgressBatch,
    lesson_ids: list[int],
) -> None:
    """Whether ``actor`` may record ``batch`` on the enrollment ``row`` (None: not found)."""
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


def _decide(
    enrollment_id: int, row: Any, batch: ProgressBatch, state: State, now: datetime
) -> tuple[ProgressResult, Write | None]:
    """The batch played over the enrollment's state: its answer and what it writes (None
    when it changes nothing)."""
    changes, new_ids, accepted = _apply(batch, state.recorded, state.done, now)
    completed_lessons = int(row.completed_lessons)
    completed_at: datetime | None = row.completed_at
    write = None
    if changes:
        done = state.done
        newly_completed = sum(
            1 for lesson_id, c in changes.items() if c.completed_at and not done.get(lesson_id)
        )
        completed_lessons += newly_completed
        completes = completed_at is None and is_complete(completed_lessons, row.lessons_count)
        if completes:
            completed_at = now
        counters = (completed_lessons, completed_at) if newly_completed or completes else None
        write = Write(enrollment_id, new_ids, changes, counters, completes)
    result = ProgressResult(
        enrollment=enrollment_id,
        progress=progress_summary(completed_lessons, row.lessons_count),
        completed_at=completed_at,
        accepted=accepted,
        duplicates=len(batch.events) - accepted,
    )
    return result, write


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


def _apply(
    batch: ProgressBatch, recorded: set[uuid.UUID], done: dict[int, bool], now: datetime
) -> tuple[dict[int, Change], list[uuid.UUID], int]:
    """Play the batch, in order, over the current state: the rows to write, the ids of the
    events that change something, and how many events were new (not duplicates)."""
    state = dict(done)  # lesson -> completed?
    changes: dict[int, Change] = {}
    new_ids: list[uuid.UUID] = []
    # Ids as ints: a UUID's own hash is Python code, an int's is not.
    seen = {event_id.int for event_id in recorded}
    accepted = 0
    for event in batch.events:
        if (key := event.event_id.int) in seen:
            continue
        seen.add(key)
        accepted += 1
        at = min(event.at, now) if event.at is not None else now
        completes = event.kind is EventKind.completed
        if event.lesson not in state:
            changes[event.lesson] = Change(at, at if completes else None)
        elif completes and not state[event.lesson]:
            before = changes.get(event.lesson)
            viewed_at = before.viewed_at if before else at
            changes[event.lesson] = Change(viewed_at, at)
        else:
            continue  # changes nothing: not even its id is written
        state[event.lesson] = completes or state.get(event.lesson, False)
        new_ids.append(event.event_id)
    return changes, new_ids, accepted


def _count_after_commit(session: Session, accepted: int, duplicates: int, completed: int) -> None:
    from eduflow.metrics import COURSE_COMPLETIONS, PROGRESS_EVENTS

    def count() -> None:
        if accepted:
            PROGRESS_EVENTS.labels("accepted").inc(accepted)
        if duplicates:
            PROGRESS_EVENTS.labels("duplicate").inc(duplicates)
        if completed:
            COURSE_COMPLETIONS.inc(completed)

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
