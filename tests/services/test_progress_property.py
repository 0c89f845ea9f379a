"""Property: whatever events arrive (resent, out of order, mixed with lesson changes), the
incremental counters equal what ``progress recompute`` computes from the rows, and a
simple model of the rules."""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eduflow.db import session_scope
from eduflow.errors import Invalid
from eduflow.models import Enrollment, OutboxJob
from eduflow.models.users import Role
from eduflow.services import lessons as lesson_service
from eduflow.services import progress
from eduflow.services.permissions import Principal
from eduflow.services.progress_recompute import recompute
from tests.factories import make_course, make_enrollment, make_lesson, make_user

event = st.tuples(st.integers(0, 5), st.sampled_from(["viewed", "completed"]), st.booleans())
operation = st.one_of(
    st.tuples(st.just("batch"), st.lists(event, min_size=1, max_size=8)),
    st.tuples(st.just("add"), st.none()),
    st.tuples(st.just("delete"), st.integers(0, 5)),
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(operation, min_size=1, max_size=12))
def test_counters_equal_recomputed_figures(operations: list[Any]) -> None:
    with session_scope() as s:
        owner = make_user(s, Role.instructor)
        course = make_course(s, owner=owner)
        lessons = [make_lesson(s, course).id for _ in range(4)]
        student = make_user(s)
        enrollment_id = make_enrollment(s, student, course).id
        course_id = course.id
        actor = Principal(id=student.id, username=student.username, role=Role.student)
        owner_actor = Principal(id=owner.id, username=owner.username, role=Role.instructor)
    sent: list[dict[str, Any]] = []  # every event sent; a resend repeats one verbatim
    completed: set[int] = set()  # the model: lessons (still there) completed
    ever_complete = False
    for kind, arg in operations:
        if kind == "add":
            with session_scope() as s:
                new = lesson_service.create_lesson(
                    s, owner_actor, {"course": course_id, "title": "Extra lesson"}
                )
            lessons.append(new.id)
        elif kind == "delete" and lessons:
            gone = lessons.pop(arg % len(lessons))
            with session_scope() as s:
                lesson_service.delete_lesson(s, owner_actor, gone)
            completed.discard(gone)
        elif kind == "batch" and lessons:
            events = []
            for index, event_kind, resend in arg:
                if resend and sent:
                    events.append(dict(sent[index % len(sent)]))
                    continue
                lesson = lessons[index % len(lessons)]
                events.append({"event_id": str(uuid.uuid4()), "lesson": lesson, "kind": event_kind})
            sent.extend(events)
            try:
                with session_scope() as s:
                    result = progress.record_progress(s, actor, enrollment_id, {"events": events})
            except Invalid:  # a resent event of a deleted lesson: the whole batch is refused
                assert any(e["lesson"] not in lessons for e in events)
                continue
            completed |= {e["lesson"] for e in events if e["kind"] == "completed"}
            assert result.accepted + result.duplicates == len(events)
        if lessons and completed >= set(lessons):
            ever_complete = True
    with session_scope() as s:
        report = recompute(s, course_id=course_id)
        enrollment = s.get(Enrollment, enrollment_id)
        jobs = (
            s.query(OutboxJob)
            .filter(OutboxJob.job_name == "course_completed")
            .filter(OutboxJob.args["enrollment_id"].as_integer() == enrollment_id)
            .count()
        )
    assert report.differences == []
    assert enrollment.completed_lessons == len(completed & set(lessons))
    assert (enrollment.completed_at is not None) == ever_complete
    assert jobs == (1 if ever_complete else 0)
