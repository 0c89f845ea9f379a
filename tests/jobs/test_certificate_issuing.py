"""The course_completed job issues the certificate: once under any concurrency, linked
from the one congratulation email."""

from __future__ import annotations

import io
import threading
import time
import uuid
from typing import Any

from sqlmodel import select

from eduflow.db import session_scope
from eduflow.models import Certificate
from eduflow.models.users import Role
from eduflow.services import progress
from eduflow.services.permissions import Principal
from tests.factories import make_course, make_enrollment, make_lesson, make_user

RUNS = 100


def _complete(full_name: str = "Ελένη Σταθοπούλου") -> tuple[int, str]:
    """An enrollment completed through the progress service (its last lesson)."""
    with session_scope() as s:
        course = make_course(s, title="Practical Databases")
        lesson = make_lesson(s, course)
        student = make_user(s, Role.student, full_name=full_name)
        enrollment = make_enrollment(s, student, course)
        ids = (enrollment.id, student.email, lesson.id)
        actor = Principal(id=student.id, username=student.username, role=Role.student)
    batch = {"events": [{"event_id": str(uuid.uuid4()), "lesson": ids[2], "kind": "completed"}]}
    with session_scope() as s:
        assert progress.record_progress(s, actor, ids[0], batch).completed_at is not None
    return ids[0], ids[1]


def test_concurrent_course_completed_runs_give_one_certificate_and_one_email(
    smtp_server: Any, client: Any
) -> None:
    from pypdf import PdfReader

    from eduflow.jobs.completion import course_completed
    from eduflow.jobs.tasks import JobBusy

    enrollment_id, email = _complete()
    barrier = threading.Barrier(RUNS)
    outcomes: list[str] = []
    errors: list[BaseException] = []
    busy = [0]

    def run() -> None:
        try:
            barrier.wait()
            deadline = time.monotonic() + 120
            while True:
                try:
                    outcomes.append(course_completed(enrollment_id))
                    return
                except JobBusy:  # RQ retries a busy job later; so does this run
                    busy[0] += 1
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.005)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(RUNS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(outcomes) == RUNS
    assert outcomes.count("sent") == 1
    assert busy[0] > 0  # the runs really overlapped
    with session_scope() as s:
        [certificate] = s.exec(select(Certificate)).all()
    assert certificate.enrollment_id == enrollment_id
    assert certificate.student_name == "Ελένη Σταθοπούλου"
    assert len(smtp_server.messages) == 1

    # The one email links to the public verification page and the PDF; both answer.
    message = smtp_server.messages[0]
    assert message["To"] == email
    plain = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    verify = f"http://localhost:8000/api/v1/certificates/{certificate.serial}/"
    assert verify in plain and verify + "pdf/" in plain
    assert f'href="{verify}"' in html and f'href="{verify}pdf/"' in html
    page = client.get(verify.removeprefix("http://localhost:8000"))
    assert page.status_code == 200 and page.json()["status"] == "valid"
    pdf = client.get((verify + "pdf/").removeprefix("http://localhost:8000"))
    text = PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
    assert "Ελένη Σταθοπούλου" in text and certificate.serial in text
