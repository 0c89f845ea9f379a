"""``eduflow progress recompute``: reports differences, repairs them with --fix."""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import update

from eduflow.db import session_scope
from eduflow.models import Enrollment
from eduflow.models.users import Role
from eduflow.services import progress
from eduflow.services.permissions import Principal
from tests.factories import make_course, make_enrollment, make_lesson, make_user


def _world() -> tuple[int, int, int]:
    with session_scope() as s:
        course = make_course(s)
        lessons = [make_lesson(s, course).id for _ in range(2)]
        student = make_user(s)
        first = make_enrollment(s, student, course)
        second = make_enrollment(s, make_user(s), course)
        actor = Principal(id=student.id, username=student.username, role=Role.student)
        ids = (course.id, first.id, second.id)
    events = [
        {"event_id": str(uuid.uuid4()), "lesson": lesson, "kind": "completed"} for lesson in lessons
    ]
    with session_scope() as s:
        progress.record_progress(s, actor, ids[1], {"events": events})
    return ids


def test_consistent_counters_report_no_difference(cli: Any) -> None:
    course_id, _, _ = _world()
    result = cli("progress", "recompute", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"checked": 2, "differences": [], "fixed": 0}
    plain = cli("progress", "recompute", "--course", str(course_id))
    assert plain.exit_code == 0 and "2 enrollments checked" in plain.stdout


def test_drifted_counters_are_reported_then_fixed(cli: Any) -> None:
    _, first, second = _world()
    with session_scope() as s:  # simulate drift: one counter too low, one too high
        s.execute(update(Enrollment).where(Enrollment.id == first).values(completed_lessons=1))
        s.execute(update(Enrollment).where(Enrollment.id == second).values(completed_lessons=5))
    found = cli("progress", "recompute", "--json")
    assert found.exit_code == 1
    differences = json.loads(found.stdout)["differences"]
    assert {(d["enrollment"], d["field"], d["stored"], d["computed"]) for d in differences} == {
        (first, "completed_lessons", 1, 2),
        (second, "completed_lessons", 5, 0),
    }
    fixed = cli("progress", "recompute", "--fix", "--json")
    assert fixed.exit_code == 0 and json.loads(fixed.stdout)["fixed"] == 2
    again = cli("progress", "recompute", "--json")
    assert json.loads(again.stdout)["differences"] == []
    with session_scope() as s:
        assert s.get(Enrollment, first).completed_lessons == 2
        assert s.get(Enrollment, second).completed_lessons == 0


def test_missing_completion_is_repaired_with_its_job(cli: Any) -> None:
    course_id, first, _ = _world()
    with session_scope() as s:
        s.execute(update(Enrollment).where(Enrollment.id == first).values(completed_at=None))
    found = cli("progress", "recompute", "--course", str(course_id), "--json")
    assert [d["field"] for d in json.loads(found.stdout)["differences"]] == ["completed_at"]
    assert cli("progress", "recompute", "--fix").exit_code == 0
    with session_scope() as s:
        assert s.get(Enrollment, first).completed_at is not None


def test_unknown_course_is_one_line_error(cli: Any) -> None:
    result = cli("progress", "recompute", "--course", "999999")
    assert result.exit_code == 1
    assert len(result.stderr.strip().splitlines()) == 1
