"""Drill: Redis stops for 15 s under load while the API, a worker and the scheduler run.

Measured: no enrollment lost and no email doubled (by Message-ID); every line every process
wrote is JSON; a retry due during the outage is enqueued, and both schedulers (the worker's
mover of retries, the periodic-job scheduler) report back, within 5 s of Redis.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.ops.drills import Load, database_consistent, open_course_ids, seed, student_tokens
from tests.ops.stack import EduflowProcess

pytestmark = pytest.mark.slow

OUTAGE_S = 15.0
SCHEDULER_BACK_S = 5.0


def json_lines(path: Path) -> list[dict[str, Any]]:
    """Every line of a log, parsed; fails on the first line that is not a JSON object."""
    lines = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        try:
            parsed = json.loads(line)
        except ValueError:
            raise AssertionError(f"{path.name}:{number} is not JSON: {line[:200]!r}") from None
        assert isinstance(parsed, dict), line
        lines.append(parsed)
    return lines


def logged_at(lines: list[dict[str, Any]], event: str) -> list[float]:
    """Wall-clock times (epoch seconds) of the lines with ``event``."""
    return [
        datetime.fromisoformat(line["timestamp"].replace("Z", "+00:00")).timestamp()
        for line in lines
        if line.get("event") == event
    ]


def wait_for_line(path: Path, event: str, timeout: float = 60) -> None:
    """Wait until a process logged ``event`` (it is up)."""
    deadline = time.monotonic() + timeout
    while event not in (path.read_text() if path.exists() else ""):
        assert time.monotonic() < deadline, f"no {event} in {path.name}"
        time.sleep(0.2)


def unsent(pg_url: str) -> int:
    with psycopg.connect(pg_url, connect_timeout=5) as conn:
        row = conn.execute("SELECT count(*) FROM enrollments WHERE email_sent_at IS NULL")
        return int(row.fetchone()[0])  # type: ignore[index]


def test_redis_stop_loses_nothing_logs_json_and_schedulers_come_back(
    running_drill: dict[str, Any], smtp_server: Any
) -> None:
    from redis import Redis
    from rq import Queue
    from rq.job import Job

    pg, redis, server, tmp = (running_drill[k] for k in ("pg", "redis", "server", "tmp"))
    env = dict(running_drill["env"], EDUFLOW_SMTP_URL=smtp_server.url, EDUFLOW_LOG_LEVEL="INFO")
    seed(running_drill["env"], courses=12, students=30)
    tokens = student_tokens(server.url, 30)
    courses = open_course_ids(pg.url, min_capacity=30)[:4]
    worker = EduflowProcess(env, tmp / "worker.log", "worker")
    scheduler = EduflowProcess(env, tmp / "scheduler.log", "scheduler")
    try:
        wait_for_line(tmp / "worker.log", "worker_starting")
        wait_for_line(tmp / "scheduler.log", "scheduler_started")
        time.sleep(1.0)
        with Load(server.url, tokens, courses, writers=2, readers=1, pause=0.05) as load:
            time.sleep(2.0)
            # A job scheduled to run in the middle of the outage (as a retry with backoff is).
            due = datetime.now(UTC) + timedelta(seconds=OUTAGE_S / 2)
            scheduled = Queue("default", connection=Redis.from_url(redis.url)).enqueue_at(
                due, "eduflow.jobs.tasks.expire_abandoned_enrollments"
            )
            redis.stop()
            time.sleep(OUTAGE_S)
            restarting = time.time()
            redis.start()  # returns once it answers PING
            back = time.time()
            time.sleep(8.0)
        client = Redis.from_url(redis.url)
        deadline = time.monotonic() + 60
        while unsent(pg.url):
            assert time.monotonic() < deadline, "emails still unsent 60 s after the outage"
            time.sleep(0.5)
        job = Job.fetch(scheduled.id, connection=client)
        assert job.enqueued_at is not None and job.get_status() == "finished", job.get_status()
        enqueued_after = job.enqueued_at.replace(tzinfo=UTC).timestamp() - back
    finally:
        worker.stop()
        scheduler.stop()

    assert {a.status for a in load.answers} <= {200, 201, 409}, {a.status for a in load.answers}
    figures = database_consistent(pg.url, load.created_ids())
    message_ids = [str(m["Message-ID"]) for m in smtp_server.messages]
    assert len(message_ids) == len(set(message_ids)) == figures["enrollments"]
    logs = {p.name: json_lines(p) for p in (tmp / "serve.log", tmp / "worker.log",
                                            tmp / "scheduler.log")}  # fmt: skip
    mover_back = [t - back for t in logged_at(logs["worker.log"], "retry_scheduler_resumed")]
    cron_back = [t - back for t in logged_at(logs["scheduler.log"], "scheduler_resumed")]
    # Logged after the restart began (a line may precede start()'s own PING), within 5 s.
    earliest = restarting - back
    assert mover_back and earliest <= mover_back[-1] < SCHEDULER_BACK_S, mover_back
    assert cron_back and earliest <= cron_back[-1] < SCHEDULER_BACK_S, cron_back
    assert enqueued_after < SCHEDULER_BACK_S, enqueued_after
    print(
        f"Redis stop {OUTAGE_S:.0f} s: {figures}, {len(message_ids)} emails, all Message-IDs "
        f"unique; {sum(len(v) for v in logs.values())} log lines, all JSON; after Redis came "
        f"back: retry mover {mover_back[-1]:.2f} s, periodic scheduler {cron_back[-1]:.2f} s, "
        f"due job enqueued {enqueued_after:.2f} s"
    )
