"""Outbox -> RQ: relayed after commit, swept when left behind, one job per row, emails once."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

from sqlalchemy import update
from sqlmodel import col, select

from eduflow.db import session_scope
from eduflow.models import Enrollment, OutboxJob
from eduflow.models.users import Role
from eduflow.services.permissions import Principal
from tests.conftest import free_port
from tests.factories import make_course, make_user
from tests.jobs.conftest import recipients, set_env, wait_for, work_burst


def _setup_students(n: int, title: str = "Distributed Systems") -> tuple[int, list[Any]]:
    with session_scope() as s:
        course = make_course(s, title=title)
        students = [make_user(s, username=f"learner{i}") for i in range(n)]
    return course.id, students  # type: ignore[return-value]


def _enroll(course_id: int, student: Any) -> None:
    from eduflow.services.enrollments import enroll_student

    with session_scope() as s:
        enroll_student(s, Principal(student.id, student.username, Role.student), course_id)


def _backlog() -> int:
    from eduflow.outbox import outbox_backlog

    return outbox_backlog()


def test_enroll_200_students_each_gets_exactly_one_email(smtp_server: Any) -> None:
    course_id, students = _setup_students(200, title="Compilers, Part I")
    for student in students:
        _enroll(course_id, student)
    assert _backlog() == 0  # every row was relayed right after its commit
    work_burst()
    got = Counter(recipients(smtp_server))
    assert got == Counter(s.email for s in students)  # each address once, nobody missing
    assert {m["Subject"] for m in smtp_server.messages} == {"You are enrolled in Compilers, Part I"}
    with session_scope() as s:
        assert all(s.exec(select(Enrollment.email_sent_at)).all())


def test_redis_down_enrollments_succeed_and_sweep_delivers_once(
    monkeypatch: Any, smtp_server: Any, cli: Any
) -> None:
    from eduflow.cache.health import reset_store
    from tests.conftest import TEST_REDIS_URL

    course_id, students = _setup_students(20)
    set_env(monkeypatch, redis_url=f"redis://127.0.0.1:{free_port()}/0")  # nobody listens
    reset_store()
    for student in students:
        _enroll(course_id, student)  # no exception: the relay is best effort
    assert _backlog() == 20
    with session_scope() as s:
        assert len(s.exec(select(Enrollment)).all()) == 20

    set_env(monkeypatch, redis_url=TEST_REDIS_URL)  # Redis is back
    reset_store()
    result = cli("jobs", "relay", "--json")
    assert result.exit_code == 0, result.stderr
    assert '"relayed": 20' in result.stdout
    assert _backlog() == 0
    work_burst()
    assert Counter(recipients(smtp_server)) == Counter(s.email for s in students)
    # A second sweep finds nothing; nothing is sent twice.
    assert '"relayed": 0' in cli("jobs", "relay", "--json").stdout
    work_burst()
    assert len(smtp_server.messages) == 20


_DIE_AFTER_COMMIT = """
import os
from eduflow.db import session_scope
from eduflow.outbox import record_job
with session_scope() as s:
    record_job(s, "daily_report", day="2024-01-02")
os._exit(0)  # killed right after the relay: the batched relayed mark is never written
"""


def test_a_process_killed_before_marking_leaves_a_row_the_sweep_marks_once() -> None:
    import subprocess
    import sys

    from eduflow.cache.stores import get_redis
    from eduflow.outbox import relay_pending

    subprocess.run([sys.executable, "-c", _DIE_AFTER_COMMIT], check=True, timeout=60)
    assert get_redis().lrange("rq:queue:default", 0, -1) == [b"outbox-1"]  # relayed...
    assert _backlog() == 1  # ...but not marked
    result = relay_pending()
    assert (result.relayed, result.duplicates) == (0, 1)
    assert get_redis().lrange("rq:queue:default", 0, -1) == [b"outbox-1"]  # still one job
    assert _backlog() == 0


def test_the_relay_after_commit_touches_redis_only_and_rows_are_marked_in_batches() -> None:
    from sqlalchemy import event

    from eduflow.cache.stores import get_redis
    from eduflow.db import get_engine
    from eduflow.outbox import relay as outbox

    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    with session_scope() as s:  # rows as a request records them (relayed by hand below)
        rows = [
            OutboxJob(job_name="daily_report", args={"day": f"2024-01-0{d}"}) for d in (1, 2, 3)
        ]
        s.add_all(rows)
    event.listen(get_engine(), "before_cursor_execute", count)
    try:
        with outbox._flush_lock:  # hold the marking thread back while the relay runs
            outbox.relay_after_commit(rows)
            assert statements == []  # the request path spends no database round trip
        wait_for(lambda: all(_relayed_at_is_set(r.id) for r in rows), timeout=10, what="batch mark")
    finally:
        event.remove(get_engine(), "before_cursor_execute", count)
    assert sum("UPDATE outbox_jobs" in sql for sql in statements) == 1  # one UPDATE for all
    assert get_redis().llen("rq:queue:default") == 3


def _relayed_at_is_set(outbox_id: int | None) -> bool:
    with session_scope() as s:
        row = s.get(OutboxJob, outbox_id)
        return row is not None and row.relayed_at is not None


def test_request_id_travels_with_the_job() -> None:
    from rq.job import Job

    from eduflow.cache.stores import get_redis
    from eduflow.logging import bind_context, clear_context
    from eduflow.outbox import record_job

    bind_context(request_id="req-7f3a")
    try:
        with session_scope() as s:
            row = record_job(s, "daily_report", day="2024-01-02")
    finally:
        clear_context()
    job = Job.fetch(f"outbox-{row.id}", connection=get_redis())
    assert job.meta["request_id"] == "req-7f3a"
    assert job.kwargs == {"day": "2024-01-02"}
    assert job.retries_left == 3  # EDUFLOW_JOB_RETRY_INTERVALS default: 10, 60, 300


def test_old_relayed_rows_are_pruned() -> None:
    from eduflow.models._base import utcnow
    from eduflow.outbox import prune_relayed, record_job

    with session_scope() as s:
        old = record_job(s, "daily_report", day="2024-01-01")
        record_job(s, "daily_report", day="2024-01-02")
    with session_scope() as s:
        s.execute(
            update(OutboxJob)
            .where(col(OutboxJob.id) == old.id)
            .values(relayed_at=utcnow() - timedelta(days=30))
        )
    assert prune_relayed() == 1
    with session_scope() as s:
        assert [r.id for r in s.exec(select(OutboxJob)).all()] == [old.id + 1]


def test_unknown_job_name_is_reported_not_lost() -> None:
    from eduflow.outbox import relay_pending

    with session_scope() as s:
        s.add(OutboxJob(job_name="no_such_job", args={}))
    result = relay_pending()
    assert result.relayed == 0 and "no_such_job" in result.errors[0]
    assert _backlog() == 1


def test_the_relay_keeps_one_redis_connection_and_registers_the_queue() -> None:
    from rq import Queue

    from eduflow.cache.stores import get_redis
    from eduflow.outbox import record_job
    from eduflow.outbox import relay as outbox

    outbox._registered.clear()  # as in a new process
    with session_scope() as s:
        first = record_job(s, "daily_report", day="2024-01-01")
    client = get_redis()
    assert client is not None
    assert "default" in {q.name for q in Queue.all(connection=client)}

    for day in range(2, 12):
        with session_scope() as s:
            last = record_job(s, "daily_report", day=f"2024-01-{day:02d}")
    queue = Queue("default", connection=client)
    assert queue.job_ids[:1] == [f"outbox-{first.id}"] and queue.count == 11
    assert queue.job_ids[-1] == f"outbox-{last.id}"
    relay_client = outbox._relay_client()  # one client per process, not one per request
    assert relay_client is not None and relay_client is outbox._relay_client()
