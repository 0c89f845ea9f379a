"""Embedded default (no Redis): the server process runs the outbox itself."""

from __future__ import annotations

from typing import Any

from eduflow.db import session_scope
from tests.factories import make_course, make_enrollment, make_user
from tests.jobs.conftest import recipients, wait_for


def test_server_thread_sends_the_email_without_redis(sqlite_url: str, smtp_server: Any) -> None:
    from fastapi.testclient import TestClient

    from eduflow import schema
    from eduflow.api.app import create_app
    from eduflow.outbox import outbox_backlog, record_job

    schema.upgrade("head")
    with TestClient(create_app()):  # lifespan starts the embedded runner
        with session_scope() as s:
            student = make_user(s)
            enrollment = make_enrollment(s, student, make_course(s, title="Embedded Course"))
            record_job(s, "send_enrollment_email", enrollment_id=enrollment.id)
        wait_for(lambda: len(smtp_server.messages) == 1, timeout=20, what="the email")
        wait_for(lambda: outbox_backlog() == 0, timeout=10, what="the row marked done")
    assert recipients(smtp_server) == [student.email]
    assert smtp_server.messages[0]["Subject"] == "You are enrolled in Embedded Course"


def test_worker_command_says_it_needs_redis(sqlite_url: str, cli: Any) -> None:
    result = cli("worker")
    assert result.exit_code != 0
    assert "needs EDUFLOW_REDIS_URL" in result.stderr
