"""The confirmation email: content, exactly once, retries, replay, crash recovery."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from eduflow.db import session_scope
from eduflow.models import Enrollment
from tests.factories import make_course, make_enrollment, make_user
from tests.jobs.conftest import (
    recipients,
    set_env,
    spawn_worker,
    wait_for,
    work_burst,
)


def _enrollments(n: int, title: str = "Practical Databases") -> list[tuple[int, str]]:
    from eduflow.outbox import record_job

    out = []
    with session_scope() as s:
        course = make_course(s, title=title)
        for i in range(n):
            student = make_user(s, username=f"stud{i}_{title[:4].lower()}")
            enrollment = make_enrollment(s, student, course)
            record_job(s, "send_enrollment_email", enrollment_id=enrollment.id)
            out.append((enrollment.id, student.email))
    return out


def _sent_markers() -> list[Any]:
    with session_scope() as s:
        return list(s.exec(select(Enrollment.email_sent_at)).all())


def test_message_content_and_exactly_once(smtp_server: Any) -> None:
    from eduflow.jobs.tasks import send_enrollment_email

    [(enrollment_id, email)] = _enrollments(1, title="Rust & <Safety>")
    assert send_enrollment_email(enrollment_id) == "sent"
    assert send_enrollment_email(enrollment_id) == "already-sent"
    assert len(smtp_server.messages) == 1
    msg = smtp_server.messages[0]
    assert msg["To"] == email
    assert msg["Subject"] == "You are enrolled in Rust & <Safety>"
    plain = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert "Rust & <Safety>" in plain
    assert "Rust &amp; &lt;Safety&gt;" in html
    assert "http://localhost:8000/courses/" in plain
    assert all(_sent_markers())


def test_without_smtp_the_message_is_an_eml_file(tmp_path: Path, monkeypatch: Any) -> None:
    from eduflow.jobs.tasks import send_enrollment_email

    set_env(monkeypatch, mail_dir=str(tmp_path))
    [(enrollment_id, email)] = _enrollments(1)
    send_enrollment_email(enrollment_id)
    files = list(tmp_path.glob("*.eml"))
    assert len(files) == 1
    assert f"To: {email}" in files[0].read_text()


def test_missing_enrollment_is_skipped_not_retried(smtp_server: Any) -> None:
    from eduflow.jobs.tasks import send_enrollment_email

    assert send_enrollment_email(999_999) == "missing"
    assert smtp_server.messages == []


def test_relay_after_commit_then_worker_delivers_each_once(smtp_server: Any) -> None:
    from eduflow.cache.stores import get_redis
    from eduflow.outbox import outbox_backlog

    enrolled = _enrollments(30)
    assert outbox_backlog() == 0  # relayed right after the commit
    assert get_redis().llen("rq:queue:default") == 30
    work_burst()
    assert sorted(recipients(smtp_server)) == sorted(e for _, e in enrolled)


def test_same_job_run_twice_concurrently_sends_one_email(monkeypatch: Any, slow_smtp: Any) -> None:
    from eduflow.jobs.tasks import JobBusy, send_enrollment_email

    slow_smtp.delay = 1.0
    [(enrollment_id, _)] = _enrollments(1)
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        barrier.wait()
        try:
            outcomes.append(send_enrollment_email(enrollment_id))
        except JobBusy:
            outcomes.append("busy")

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["busy", "sent"]
    # The busy run is retried later by RQ, and then finds the marker.
    assert send_enrollment_email(enrollment_id) == "already-sent"
    assert len(slow_smtp.messages) == 1


def test_duplicate_jobs_in_two_worker_processes_send_one_email(smtp_server: Any) -> None:
    """Two outbox rows for one enrollment, worked by two processes at once: one email."""
    from eduflow.outbox import record_job

    [(enrollment_id, email)] = _enrollments(1)
    with session_scope() as s:
        for _ in range(5):
            record_job(s, "send_enrollment_email", enrollment_id=enrollment_id)
    procs = [spawn_worker("--burst") for _ in range(2)]
    for p in procs:
        p.communicate(timeout=60)
        assert p.returncode == 0
    assert recipients(smtp_server) == [email]


def test_smtp_down_retries_then_fails_then_replay_delivers_once(
    monkeypatch: Any, smtp_server: Any, cli: Any
) -> None:
    from rq.registry import FailedJobRegistry

    from eduflow.cache.stores import get_redis
    from tests.conftest import free_port

    set_env(monkeypatch, job_retry_intervals="[0, 0]", smtp_url=f"smtp://127.0.0.1:{free_port()}")
    enrolled = _enrollments(3)
    work_burst()
    failed = FailedJobRegistry("default", connection=get_redis())
    assert failed.count == 3
    show = cli("jobs", "show", "outbox-1", "--json")
    assert show.exit_code == 0
    import json

    data = json.loads(show.stdout)
    assert data["status"] == "failed" and data["tries"] == 3
    assert "MailUnavailable" in data["exception"]
    assert smtp_server.messages == []

    set_env(monkeypatch, smtp_url=smtp_server.url)  # the mail server is back
    result = cli("jobs", "replay", "--all", "--match", "smtp server")
    assert result.exit_code == 0, result.stderr
    assert "3 requeued" in result.stdout
    work_burst()
    assert sorted(recipients(smtp_server)) == sorted(e for _, e in enrolled)
    assert failed.count == 0
    # Replaying again finds nothing; the emails stay unique.
    assert "nothing to replay" in cli("jobs", "replay", "--all").stdout
    work_burst()
    assert len(smtp_server.messages) == 3


@pytest.mark.slow
def test_worker_killed_mid_send_retries_and_sends_once(monkeypatch: Any, slow_smtp: Any) -> None:
    set_env(
        monkeypatch,
        job_timeout="3",
        job_lock_ttl="4",
        smtp_timeout="2.5",
        job_retry_intervals="[1, 1, 1]",
        worker_maintenance_interval="1",
    )
    slow_smtp.delay = 30  # the first send hangs at RCPT until the worker dies
    [(_, email)] = _enrollments(1)
    first = spawn_worker()
    try:
        assert slow_smtp.rcpt_seen.wait(30), "the worker never started sending"
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        first.kill()
    assert slow_smtp.messages == []
    assert _sent_markers() == [None]

    second = spawn_worker()
    try:
        wait_for(lambda: len(slow_smtp.messages) >= 1, timeout=60, what="the retried email")
        wait_for(lambda: _sent_markers() != [None], timeout=10, what="the sent marker")
        second.send_signal(signal.SIGTERM)  # graceful: finishes and exits 0
        _, err = second.communicate(timeout=30)
    finally:
        second.kill()
    assert second.returncode == 0, err[-2000:]
    assert recipients(slow_smtp) == [email]
    assert '"job_id":"outbox-1"' in err
