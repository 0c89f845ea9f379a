"""The course_completed job: certificate seam, one congratulation email, safe to rerun."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from eduflow.db import session_scope
from eduflow.models import Enrollment
from eduflow.models.users import Role
from eduflow.services import progress
from eduflow.services.permissions import Principal
from tests.factories import make_course, make_enrollment, make_lesson, make_user
from tests.jobs.conftest import work_burst


def _complete(title: str = "Rust & <Safety>", full_name: str = "Ada Lovelace") -> tuple[int, str]:
    with session_scope() as s:
        course = make_course(s, title=title)
        lesson = make_lesson(s, course)
        student = make_user(s, Role.student, full_name=full_name)
        enrollment = make_enrollment(s, student, course)
        ids = (enrollment.id, student.email, lesson.id)
        actor = Principal(id=student.id, username=student.username, role=Role.student)
    batch = {"events": [{"event_id": str(uuid.uuid4()), "lesson": ids[2], "kind": "completed"}]}
    with session_scope() as s:
        assert progress.record_progress(s, actor, ids[0], batch).completed_at is not None
    return ids[0], ids[1]


def test_completion_email_content_and_exactly_once(smtp_server: Any) -> None:
    from eduflow.jobs.completion import course_completed

    enrollment_id, email = _complete()
    work_burst()  # the job the completing batch relayed
    assert course_completed(enrollment_id) == "already-sent"
    assert len(smtp_server.messages) == 1
    msg = smtp_server.messages[0]
    assert msg["To"] == email
    assert msg["Subject"] == "Congratulations, you completed Rust & <Safety>"
    plain = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert "Rust & <Safety>" in plain and "http://localhost:8000/courses/" in plain
    assert plain.startswith("Hello Ada Lovelace,")  # the name the certificate prints
    assert "Rust &amp; &lt;Safety&gt;" in html
    with session_scope() as s:
        marker = s.execute(
            select(Enrollment.completion_email_sent_at).where(Enrollment.id == enrollment_id)
        ).scalar()
    assert marker is not None


def test_unknown_or_unfinished_enrollment_sends_nothing(smtp_server: Any) -> None:
    from eduflow.jobs.completion import course_completed

    assert course_completed(999_999) == "missing"
    with session_scope() as s:
        enrollment_id = make_enrollment(s, make_user(s), make_course(s)).id
    assert course_completed(enrollment_id) == "missing"
    assert smtp_server.messages == []
