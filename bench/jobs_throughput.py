"""Worker throughput: a burst of N email jobs to a local SMTP server (aiosmtpd), 1 and 2 workers.

Usage (a PostgreSQL database and a Redis db of your own; both are wiped):

    EDUFLOW_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/eduflow_bench \
    EDUFLOW_REDIS_URL=redis://127.0.0.1:6379/9 \
    python bench/jobs_throughput.py --jobs 1000 --workers 1 2 [--relay-requests 1000]

For each worker count: N enrollments + outbox rows are written, relayed to RQ, then
`eduflow worker --burst --concurrency W` runs until the queue is empty; the time from the
worker's start to its exit (process start-up included) and the messages received are
reported, with the CPU time the worker processes and the SMTP sink spent per job (a sink
far below the workers' figure is not what limits the throughput).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from typing import Any


class Sink:
    """aiosmtpd server counting messages."""

    def __init__(self) -> None:
        import socket

        from aiosmtpd.controller import Controller

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self.count = 0
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Count one message."""
        self.count += 1
        return "250 OK"


def seed(n: int) -> None:
    from sqlalchemy import text

    from eduflow.db import session_scope
    from eduflow.models import Course, Enrollment, OutboxJob, User
    from eduflow.outbox import relay_pending

    with session_scope() as s:
        s.execute(
            text("TRUNCATE users, courses, enrollments, outbox_jobs RESTART IDENTITY CASCADE")
        )
        teacher = User(
            username="bench_teacher", email="t@bench.local", password_hash="x", role="instructor"
        )
        s.add(teacher)
        s.flush()
        course = Course(title="Benchmarking 101", is_published=True, owner_id=teacher.id)
        s.add(course)
        s.flush()
        users = [
            User(username=f"bench{i}", email=f"bench{i}@bench.local", password_hash="x")
            for i in range(n)
        ]
        s.add_all(users)
        s.flush()
        enrollments = [
            Enrollment(student_id=u.id, course_id=course.id, status="active") for u in users
        ]
        s.add_all(enrollments)
        s.flush()
        s.add_all(
            OutboxJob(job_name="send_enrollment_email", args={"enrollment_id": e.id})
            for e in enrollments
        )
    relay_pending()


def relay_cost(n: int) -> None:
    """Time the after-commit relay of one outbox row, as every enrollment request runs it."""
    import statistics

    from sqlalchemy import text

    from eduflow.db import session_scope
    from eduflow.models import OutboxJob
    from eduflow.outbox import flush_relay_marks, outbox_backlog, relay_after_commit

    with session_scope() as s:
        s.execute(text("TRUNCATE outbox_jobs RESTART IDENTITY CASCADE"))
        rows = [OutboxJob(job_name="daily_report", args={"day": "2024-01-01"}) for _ in range(n)]
        s.add_all(rows)
    relay_after_commit(rows[:10])  # warm up: connections, imports, the Lua script
    walls: list[float] = []
    cpu = time.process_time()
    for row in rows[10:]:
        start = time.perf_counter()
        relay_after_commit([row])
        walls.append(time.perf_counter() - start)
        time.sleep(0.002)  # requests arrive over time (background marking included in CPU)
    flush_relay_marks()
    cpu = time.process_time() - cpu
    print(
        f"relay_after_commit requests={len(walls)} "
        f"median_ms={statistics.median(walls) * 1000:.3f} "
        f"mean_ms={statistics.fmean(walls) * 1000:.3f} "
        f"cpu_ms_per_request={cpu * 1000 / len(walls):.3f} backlog_after={outbox_backlog()}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--relay-requests", type=int, default=0, help="also time the after-commit relay (N rows)"
    )
    args = parser.parse_args()

    from eduflow import schema
    from eduflow.cache.stores import get_redis

    sink = Sink()
    sink.controller.start()
    os.environ["EDUFLOW_SMTP_URL"] = f"smtp://127.0.0.1:{sink.port}"
    os.environ.setdefault("EDUFLOW_LOG_LEVEL", "WARNING")
    schema.upgrade("head")
    if args.relay_requests:
        get_redis().flushdb()
        relay_cost(args.relay_requests)
    for workers in args.workers:
        get_redis().flushdb()
        seed(args.jobs)
        sink.count = 0
        start = time.perf_counter()
        sink_cpu = time.process_time()  # this process only runs the sink meanwhile
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "eduflow.cli.__main__",
                "worker",
                "--burst",
                "--concurrency",
                str(workers),
            ],
            check=True,
        )
        elapsed = time.perf_counter() - start
        sink_cpu = time.process_time() - sink_cpu
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        worker_cpu = (after.ru_utime - children.ru_utime) + (after.ru_stime - children.ru_stime)
        print(
            f"workers={workers} jobs={args.jobs} delivered={sink.count} "
            f"seconds={elapsed:.2f} jobs_per_s={args.jobs / elapsed:.1f} "
            f"worker_cpu_ms_per_job={worker_cpu * 1000 / args.jobs:.2f} "
            f"sink_cpu_ms_per_job={sink_cpu * 1000 / args.jobs:.2f}",
            flush=True,
        )
    sink.controller.stop()


if __name__ == "__main__":
    main()
