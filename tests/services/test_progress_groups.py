"""Batches recorded as a group answer and write exactly what they would one by one: on
PostgreSQL (one statement per step for the whole group) and on the embedded SQLite."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
import structlog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlmodel import Session

from eduflow.db import get_engine, session_scope
from eduflow.errors import EduFlowError
from eduflow.models import Enrollment, LessonProgress, OutboxJob, ProgressEvent
from eduflow.models._base import utcnow
from eduflow.models.progress import ProgressResult
from eduflow.models.users import Role
from eduflow.services import progress
from eduflow.services.permissions import Principal
from eduflow.services.progress import BatchCall, record_progress_group
from eduflow.services.progress_recompute import recompute
from tests.factories import make_course, make_enrollment, make_lesson, make_user
from tests.queries import counted_queries


def _principal(user: Any) -> Principal:
    return Principal(id=user.id, username=user.username, role=Role(user.role))


def _event(lesson: int, kind: str = "completed", **extra: Any) -> dict[str, Any]:
    return {"event_id": str(uuid.uuid4()), "lesson": lesson, "kind": kind, **extra}


def _class(lessons: int, students: int) -> tuple[int, list[int], list[int], list[Principal]]:
    """A course with ``lessons`` lessons and ``students`` actively enrolled: its id, its
    lessons, the enrollments and their students."""
    with session_scope() as s:
        course = make_course(s, owner=make_user(s, Role.instructor))
        lesson_ids = [make_lesson(s, course).id for _ in range(lessons)]
        people = [make_user(s) for _ in range(students)]
        enrollments = [make_enrollment(s, student, course).id for student in people]
        return course.id, lesson_ids, enrollments, [_principal(p) for p in people]


def _calls() -> list[BatchCall]:
    """One group with every kind of answer: new events, a completion with a resent event,
    a pending enrollment, someone else's, a foreign lesson, an event in the future, an
    anonymous caller and an enrollment that does not exist."""
    with session_scope() as s:
        owner = make_user(s, Role.instructor)
        course = make_course(s, owner=owner)
        lessons = [make_lesson(s, course).id for _ in range(3)]
        foreign = make_lesson(s, make_course(s, owner=owner)).id
        students = [make_user(s) for _ in range(6)]
        enrollments = [
            make_enrollment(s, student, course, status="pending" if i == 2 else "active").id
            for i, student in enumerate(students)
        ]
        actors = [_principal(student) for student in students]
    earlier = [_event(lessons[0]), _event(lessons[1])]
    with session_scope() as s:  # the second student has done two lessons of three
        progress.record_progress(s, actors[1], enrollments[1], {"events": earlier})
    future = (utcnow() + timedelta(hours=1)).isoformat()
    batches: list[tuple[Principal | None, int, list[dict[str, Any]]]] = [
        (actors[0], enrollments[0], [_event(lessons[0], "viewed"), _event(lessons[0])]),
        (actors[1], enrollments[1], [earlier[0], _event(lessons[2]), _event(lessons[2])]),
        (actors[2], enrollments[2], [_event(lessons[0])]),
        (actors[0], enrollments[3], [_event(lessons[0])]),
        (actors[4], enrollments[4], [_event(lessons[1]), _event(foreign)]),
        (actors[5], enrollments[5], [_event(lessons[1], at=future)]),
        (None, 2**31 - 2, [_event(lessons[0])]),
        (actors[3], 2**31 - 1, [_event(lessons[0])]),
    ]
    return [
        BatchCall(a, e, {"events": events}, f"req-{i}") for i, (a, e, events) in enumerate(batches)
    ]


def _answer(outcome: Any) -> Any:
    if isinstance(outcome, ProgressResult):
        return (
            "result",
            outcome.model_dump(exclude={"completed_at"}),
            outcome.completed_at is None,
        )
    assert isinstance(outcome, EduFlowError), outcome
    return ("error", type(outcome).__name__, str(outcome), getattr(outcome, "errors", None))


def _written(s: Session) -> Any:
    """What the database holds, timestamps reduced to whether they are set."""
    return (
        sorted(
            (r.enrollment_id, r.lesson_id, r.completed_at is not None)
            for r in s.execute(select(LessonProgress)).scalars()
        ),
        sorted(
            (r.enrollment_id, str(r.event_id)) for r in s.execute(select(ProgressEvent)).scalars()
        ),
        sorted(
            (e.id, e.completed_lessons, e.completed_at is not None)
            for e in s.execute(select(Enrollment)).scalars()
        ),
        sorted(
            (j.args["enrollment_id"], j.request_id)
            for j in s.execute(
                select(OutboxJob).where(OutboxJob.job_name == "course_completed")
            ).scalars()
        ),
    )


def _alone(s: Session, call: BatchCall) -> Any:
    """``record_progress`` in the request context the batch came in (its id goes with the
    outbox row), its error as a value."""
    with structlog.contextvars.bound_contextvars(request_id=call.request_id):
        try:
            return progress.record_progress(s, call.actor, call.enrollment_id, call.data)
        except EduFlowError as exc:
            return exc


def test_a_group_answers_and_writes_what_each_batch_alone_would(database: str) -> None:
    calls = _calls()
    with Session(get_engine()) as s:
        grouped = [_answer(o) for o in record_progress_group(s, calls)]
        grouped_rows = _written(s)
        s.rollback()
        alone = [_answer(_alone(s, call)) for call in calls]
        alone_rows = _written(s)
        s.rollback()
    assert grouped == alone
    assert grouped_rows == alone_rows
    kinds = [answer[0] if answer[0] == "result" else answer[1] for answer in grouped]
    assert kinds == [
        "result", "result", "Forbidden", "NotFound", "Invalid", "Invalid", "Unauthorized",
        "NotFound",
    ]  # fmt: skip
    assert grouped[1][1]["duplicates"] == 1 and grouped[1][2] is False  # completed now
    # The completion's job carries the id of the request its batch came in.
    assert [job[1] for job in grouped_rows[3]] == ["req-1"]


def test_a_group_of_twenty_is_the_statements_of_one_batch() -> None:
    _, lessons, enrollments, actors = _class(lessons=2, students=21)

    def call(i: int) -> BatchCall:
        events = [_event(lessons[0], "viewed"), _event(lessons[0]), _event(lessons[1])]
        return BatchCall(actors[i], enrollments[i], {"events": events})

    counts = []
    for calls in ([call(0)], [call(i) for i in range(1, 21)]):
        with counted_queries() as statements, session_scope() as s:
            outcomes = record_progress_group(s, calls)
        assert all(isinstance(o, ProgressResult) and o.completed_at for o in outcomes)
        outbox = [q for q in statements if "outbox_jobs" in q]
        counts.append((len(statements) - len(outbox), len(outbox)))
    # The progress statements are the same three (lock, read, write); the outbox writes
    # one row per completion (and the relay marks them after the commit).
    assert counts[0][0] == counts[1][0] == 3
    assert counts[1][1] == 20 * counts[0][1]


def test_one_enrollment_twice_in_a_group_is_refused() -> None:
    with session_scope() as s:
        course = make_course(s)
        lesson = make_lesson(s, course).id
        student = make_user(s)
        enrollment = make_enrollment(s, student, course).id
        actor = _principal(student)
        calls = [BatchCall(actor, enrollment, {"events": [_event(lesson)]}) for _ in range(2)]
        with pytest.raises(ValueError, match="twice in one group"):
            record_progress_group(s, calls)


round_of_batches = st.lists(
    st.tuples(
        st.integers(0, 3),  # enrollment
        st.lists(
            st.tuples(st.integers(0, 3), st.sampled_from(["viewed", "completed"]), st.booleans()),
            min_size=1,
            max_size=6,
        ),
    ),
    min_size=1,
    max_size=4,
    unique_by=lambda batch: batch[0],
)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(round_of_batches, min_size=1, max_size=6))
def test_grouped_counters_equal_recomputed_figures(rounds: list[Any]) -> None:
    """Random batches (new and resent events) of four enrollments, recorded in random
    groups: the counters equal what ``progress recompute`` finds, each enrollment that
    completed every lesson has ``completed_at`` and exactly one completion job."""
    course_id, lessons, enrollments, actors = _class(lessons=4, students=4)
    sent: list[list[dict[str, Any]]] = [[] for _ in enrollments]
    completed: list[set[int]] = [set() for _ in enrollments]
    for batches in rounds:
        calls = []
        for who, events in batches:
            chosen = []
            for index, kind, resend in events:
                if resend and sent[who]:
                    chosen.append(dict(sent[who][index % len(sent[who])]))
                else:
                    chosen.append(_event(lessons[index], kind))
            sent[who].extend(chosen)
            completed[who] |= {e["lesson"] for e in chosen if e["kind"] == "completed"}
            calls.append(BatchCall(actors[who], enrollments[who], {"events": chosen}))
        with session_scope() as s:
            outcomes = record_progress_group(s, calls)
        for call, outcome in zip(calls, outcomes, strict=True):
            assert isinstance(outcome, ProgressResult)
            assert outcome.accepted + outcome.duplicates == len(call.data["events"])  # type: ignore[index]
    with session_scope() as s:
        report = recompute(s, course_id=course_id)
        for who, enrollment_id in enumerate(enrollments):
            enrollment = s.get_one(Enrollment, enrollment_id)
            jobs = (
                s.query(OutboxJob)
                .filter(OutboxJob.job_name == "course_completed")
                .filter(OutboxJob.args["enrollment_id"].as_integer() == enrollment_id)
                .count()
            )
            done = completed[who] >= set(lessons)
            assert enrollment.completed_lessons == len(completed[who])
            assert (enrollment.completed_at is not None) == done
            assert jobs == (1 if done else 0)
    assert report.differences == []
