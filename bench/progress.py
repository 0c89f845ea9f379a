"""Progress ingestion benchmark: batches of events against ``eduflow serve`` on PostgreSQL + Redis.

Usage (a PostgreSQL database and a Redis db of your own: both are wiped):

    python bench/progress.py \
        --database-url postgresql://postgres@127.0.0.1:5432/eduflow_bench_progress \
        --redis-url redis://127.0.0.1:6379/11 --workers 2 --connections 64 --duration 10

Needs ``wrk``. Steps: recreate and migrate the database; seed it through the services
(courses with lessons, students actively enrolled, an access token each); start
``eduflow serve --workers N``; then

1. **mixed**: wrk drives ``POST /api/v1/enrollments/{id}/progress/`` with batches of
   ``--batch`` events, 70 % new batches (each enrollment walks its course: view a lesson,
   complete it, the next one...) and 30 % batches resent verbatim (a mobile client
   retrying); the request lists are made up front, so the load generator only sends;
2. **resent only**: every batch the mixed phase delivered, sent again: the database must
   write nothing (``pg_stat_user_tables``: no tuple inserted, updated or deleted in the
   progress tables, the enrollments or the outbox).

``--rate N`` offers at most N events/s (each connection waits after an answer; wrk's
latencies leave the wait out) instead of sending as fast as the server answers.

Prints events/s, p50/p99, the server's and the machine's CPU per batch, the statements
(transactions) per batch, accepted and duplicate events (from ``/metrics``) and the
tuples written, for each phase.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import (  # noqa: E402  (the shared helpers of bench/run.py)
    LUA_DONE,
    Server,
    cpu_seconds,
    db_transactions,
    free_port,
    fresh_stack,
    machine_cpu_seconds,
    parse_result,
    require_wrk,
    serve_argv,
)

TABLES = ("progress_events", "lesson_progress", "enrollments", "outbox_jobs")
# A backend that goes idle reports its table statistics within 10 s (PGSTAT_IDLE_INTERVAL).
STATS_DELAY = 11.0

# Each wrk thread reads its own request file: "<path>\t<token>\t<body>" per line.
LUA_FILES = (
    """
local threads = {}
local counter = 0
setup = function(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end
init = function(args)
  lines = {}
  for line in io.lines(string.format("%s.%d", PREFIX, tid)) do
    local path, token, body = line:match("([^\\t]+)\\t([^\\t]+)\\t(.+)")
    table.insert(lines, {path, "Bearer " .. token, body})
  end
  counter = 0
end
request = function()
  counter = counter + 1
  local item = lines[((counter - 1) % #lines) + 1]
  return wrk.format("POST", item[1], {
    ["Authorization"] = item[2], ["Content-Type"] = "application/json"}, item[3])
end
"""
    + LUA_DONE
)


def seed(courses: int, lessons: int, enrollments: int) -> list[dict[str, Any]]:
    """Courses with lessons and active enrollments, through the services; one entry per
    enrollment: its id, its student's token and its course's lessons in order."""
    from eduflow import schema
    from eduflow.db import session_scope
    from eduflow.models.users import Role
    from eduflow.services import auth, users
    from eduflow.services import courses as course_service
    from eduflow.services import enrollments as enrollment_service
    from eduflow.services import lessons as lesson_service
    from eduflow.services.permissions import Principal

    schema.upgrade("head")
    course_lessons: list[tuple[int, list[int]]] = []
    with session_scope() as session:
        teacher = users.create_user(
            session, "teacher", "teacher@example.com", "teach-pass-1", "instructor"
        )
        actor = Principal(id=teacher.id, username=teacher.username, role=Role.instructor)
        for i in range(courses):
            course = course_service.create_course(
                session,
                actor,
                {"title": f"Course {i:03d}", "is_published": True, "price": "0"},
            )
            ids = [
                lesson_service.create_lesson(
                    session, actor, {"course": course.id, "title": f"Lesson {j + 1}"}
                ).id
                for j in range(lessons)
            ]
            course_lessons.append((course.id, ids))
    per_student = min(5, courses)
    out: list[dict[str, Any]] = []
    students = -(-enrollments // per_student)
    with session_scope() as session:
        for s in range(students):
            user = users.create_user(
                session, f"learner{s}", f"learner{s}@example.com", "learning-pass-1"
            )
            principal = Principal(id=user.id, username=user.username, role=Role.student)
            token = auth.issue_tokens(session, user).access
            for k in range(per_student):
                if len(out) == enrollments:
                    break
                course_id, ids = course_lessons[(s + k) % courses]
                enrollment = enrollment_service.enroll_student(session, principal, course_id)
                out.append({"id": enrollment.id, "token": token, "lessons": ids})
    # The seeding's own jobs (confirmation emails) are not what is measured.
    with session_scope() as session:
        from sqlalchemy import text

        session.execute(text("DELETE FROM outbox_jobs"))
    # Planner statistics, as a database in service has them (autovacuum would gather them
    # part-way through a run otherwise, and the plans would change under the measurement).
    from eduflow.db import get_engine

    with get_engine().connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("ANALYZE")
    print(f"seeded {courses} courses x {lessons} lessons, {len(out)} active enrollments")
    return out


def request_lists(
    enrollments: list[dict[str, Any]], threads: int, batch: int, resent: float, per_thread: int
) -> tuple[list[list[tuple[str, str, str]]], list[list[tuple[str, str, str, str]]]]:
    """Per wrk thread: the mixed list of requests, and its new batches (with their first
    event id, to tell later which ones were delivered). Enrollments are split between
    threads, so two new batches of one enrollment are never in flight at once."""
    rng = random.Random(7)
    lists: list[list[tuple[str, str, str]]] = []
    news: list[list[tuple[str, str, str, str]]] = []
    for t in range(threads):
        mine = enrollments[t::threads]
        cursors = [0] * len(mine)
        sent: list[tuple[str, str, str]] = []
        new: list[tuple[str, str, str, str]] = []
        requests: list[tuple[str, str, str]] = []
        while len(requests) < per_thread:
            if sent and rng.random() < resent:
                requests.append(rng.choice(sent))
                continue
            open_ones = [i for i, c in enumerate(cursors) if c < 2 * len(mine[i]["lessons"])]
            if not open_ones:
                break
            i = rng.choice(open_ones)
            enrollment = mine[i]
            steps = range(cursors[i], min(cursors[i] + batch, 2 * len(enrollment["lessons"])))
            cursors[i] = steps.stop
            events = [
                {
                    "event_id": str(uuid.uuid4()),
                    "lesson": enrollment["lessons"][step // 2],
                    "kind": "viewed" if step % 2 == 0 else "completed",
                }
                for step in steps
            ]
            item = (
                f"/api/v1/enrollments/{enrollment['id']}/progress/",
                enrollment["token"],
                json.dumps({"events": events}, separators=(",", ":")),
            )
            requests.append(item)
            sent.append(item)
            new.append((*item, events[0]["event_id"]))
        lists.append(requests)
        news.append(new)
    return lists, news


def write_lists(prefix: Path, lists: list[list[tuple[str, str, str]]]) -> None:
    """One request file per wrk thread (``<prefix>.<thread>``)."""
    for t, requests in enumerate(lists):
        with open(f"{prefix}.{t}", "w") as out:
            for path, token, body in requests:
                out.write(f"{path}\t{token}\t{body}\n")


def table_writes(database_url: str) -> dict[str, int]:
    """Tuples inserted + updated + deleted so far in each measured table."""
    import psycopg
    from sqlalchemy.engine import make_url

    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        rows = conn.execute(
            "SELECT relname, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables"
            " WHERE relname = ANY(%s)",
            (list(TABLES),),
        ).fetchall()
    return {name: int(n) for name, n in rows}


def delivered(database_url: str, news: list[list[tuple[str, str, str, str]]]) -> list[list[Any]]:
    """The new batches whose first event is recorded: the ones the mixed phase delivered
    (a batch is recorded whole or not at all)."""
    import psycopg
    from sqlalchemy.engine import make_url

    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        recorded = {
            str(r[0]) for r in conn.execute("SELECT event_id FROM progress_events").fetchall()
        }
    return [[item[:3] for item in new if item[3] in recorded] for new in news]


def progress_metrics(base: str) -> dict[str, float]:
    """Accepted and duplicate events and completions, summed over the server's workers."""
    text = urllib.request.urlopen(base + "/metrics", timeout=10).read().decode()
    totals = {"accepted": 0.0, "duplicate": 0.0, "completions": 0.0}
    for line in text.splitlines():
        if line.startswith('eduflow_progress_events_total{outcome="accepted"}'):
            totals["accepted"] += float(line.rsplit(" ", 1)[1])
        elif line.startswith('eduflow_progress_events_total{outcome="duplicate"}'):
            totals["duplicate"] += float(line.rsplit(" ", 1)[1])
        elif line.startswith("eduflow_course_completions_total "):
            totals["completions"] += float(line.rsplit(" ", 1)[1])
    return totals


async def warm(base: str, tokens: list[str]) -> None:
    """Have every caller's token state in the server's near cache, as a login would."""
    import httpx

    limits = httpx.Limits(max_connections=32)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        for start in range(0, len(tokens), 256):
            await asyncio.gather(
                *(
                    client.get("/api/v1/auth/me/", headers={"Authorization": f"Bearer {t}"})
                    for t in tokens[start : start + 256]
                )
            )


def phase(
    name: str,
    args: argparse.Namespace,
    binary: str,
    base: str,
    server: Server,
    prefix: Path,
    duration: int,
    listed: int,
) -> dict[str, Any]:
    """One wrk run over the request files at ``prefix`` (``listed`` requests in all), with
    what it cost and wrote."""
    script = prefix.with_suffix(".lua")
    pace = ""
    if args.rate:
        # Each connection waits this long after an answer before its next request, so the
        # load offered is --rate events/s at most (a little less: the answers take time
        # too); wrk's latencies do not include the wait.
        wait_ms = round(1000 * args.connections * args.batch / args.rate)
        pace = f"delay = function() return {wait_ms} end\n"
    script.write_text(f'PREFIX = "{prefix}"\n' + pace + LUA_FILES)
    time.sleep(STATS_DELAY)  # what came before is in the statistics by now
    before = (
        progress_metrics(base),
        table_writes(args.database_url),
        db_transactions(args.database_url),
        cpu_seconds(server.proc.pid),
        machine_cpu_seconds(),
    )
    out = subprocess.run(
        [binary, f"-t{args.threads}", f"-c{args.connections}", f"-d{duration}s",
         "--timeout", "5s", "-s", str(script), base],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    result = parse_result(out)
    time.sleep(STATS_DELAY)
    after = (
        progress_metrics(base),
        table_writes(args.database_url),
        db_transactions(args.database_url),
        cpu_seconds(server.proc.pid),
        machine_cpu_seconds(),
    )
    n = max(result["requests"], 1)
    return {
        "phase": name,
        "wrapped": result["requests"] > listed,
        "batches/s": result["requests"] / result["seconds"],
        "events/s": result["requests"] * args.batch / result["seconds"],
        "p50_ms": result["p50_ms"],
        "p99_ms": result["p99_ms"],
        "errors": result["errors"],
        "accepted": after[0]["accepted"] - before[0]["accepted"],
        "duplicates": after[0]["duplicate"] - before[0]["duplicate"],
        "completions": after[0]["completions"] - before[0]["completions"],
        "tuples_written": {t: after[1].get(t, 0) - before[1].get(t, 0) for t in TABLES},
        "tx/batch": (after[2] - before[2]) / n,
        "server_cpu_ms/batch": (after[3] - before[3]) * 1000 / n,
        "machine_cpu_ms/batch": (after[4] - before[4]) * 1000 / n,
    }


def main() -> None:
    """Seed, serve, run both phases, print the figures."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--database-url", default="postgresql://postgres@127.0.0.1:5432/eduflow_bench_progress"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/11")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--duration", type=int, default=10, help="seconds of the mixed phase")
    parser.add_argument("--courses", type=int, default=20)
    parser.add_argument("--lessons", type=int, default=40, help="lessons per course")
    parser.add_argument("--enrollments", type=int, default=6000)
    parser.add_argument("--batch", type=int, default=20, help="events per batch")
    parser.add_argument("--resent", type=float, default=0.3, help="share of resent batches")
    parser.add_argument(
        "--rate",
        type=float,
        default=0,
        help="events/s the load generator offers (default 0: as fast as the server answers)",
    )
    parser.add_argument("--install-wrk", action="store_true")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    binary = require_wrk(args.install_wrk)
    workdir = Path(tempfile.mkdtemp(prefix="eduflow-bench-progress-"))
    env = fresh_stack(args.database_url, args.redis_url)
    enrollments = seed(args.courses, args.lessons, args.enrollments)
    # Enough requests per thread for the whole run at 2,500 batches/s (a faster run would
    # start the lists again: resent batches only, which the table then says).
    per_thread = max(1000, 2500 * args.duration // args.threads)
    lists, news = request_lists(enrollments, args.threads, args.batch, args.resent, per_thread)
    if min(len(requests) for requests in lists) < per_thread:
        raise SystemExit(
            f"{args.enrollments} enrollments are too few for {per_thread} requests per wrk "
            "thread: raise --enrollments or --lessons"
        )
    write_lists(workdir / "mixed", lists)

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    argv = serve_argv(sys.executable, args.workers, port)
    server = Server(argv, env, port, workdir / "server.log")
    try:
        asyncio.run(warm(base, sorted({e["token"] for e in enrollments})))
        listed = sum(len(requests) for requests in lists)
        mixed = phase("mixed", args, binary, base, server, workdir / "mixed", args.duration, listed)
        again = delivered(args.database_url, news)
        write_lists(workdir / "resent", again)
        listed = sum(len(requests) for requests in again)
        resent = phase("resent only", args, binary, base, server, workdir / "resent", 5, listed)
    finally:
        server.stop()
    load = os.getloadavg()
    results = {"mixed": mixed, "resent": resent, "loadavg": load}
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"\nload average at the end: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} (2 cores)")
    offered = f"{args.rate:,.0f} events/s offered" if args.rate else "as fast as answered"
    print(f"{args.connections} connections, {offered}")
    print(
        "| phase | events/s | batches/s | p50 ms | p99 ms | errors | accepted | duplicates "
        "| completions | tuples written | tx/batch | server CPU ms/batch "
        "| machine CPU ms/batch |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|")
    for row in (mixed, resent):
        if row["wrapped"] and row is mixed:
            print(
                f"NOTE: the {row['phase']} phase sent its request lists more than once: "
                "beyond the lists, every batch was a resent one"
            )
        written = ", ".join(f"{t} {n}" for t, n in row["tuples_written"].items())
        print(
            f"| {row['phase']} | {row['events/s']:,.0f} | {row['batches/s']:,.0f} "
            f"| {row['p50_ms']:.1f} | {row['p99_ms']:.1f} | {row['errors']} "
            f"| {row['accepted']:,.0f} | {row['duplicates']:,.0f} | {row['completions']:,.0f} "
            f"| {written} | {row['tx/batch']:.2f} | {row['server_cpu_ms/batch']:.2f} "
            f"| {row['machine_cpu_ms/batch']:.2f} |"
        )


if __name__ == "__main__":
    main()
