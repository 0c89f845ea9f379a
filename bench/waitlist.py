"""Rush benchmark of the waitlist: many distinct students rush one course of limited capacity.

Usage (a PostgreSQL database and a Redis db of your own: both are wiped):

    python bench/waitlist.py --database-url postgresql://postgres@127.0.0.1:5432/eduflow_bench_wl \
        --redis-url redis://127.0.0.1:6379/12 --students 5000 --capacity 500 --connections 64

Each student POSTs ``/enrollments/``; one turned away with 409 ``course-full`` POSTs
``/waitlist/`` on the same connection at once. The load generator (httpx, asyncio) keeps
``--connections`` students in flight and runs on the same cores as the server
(``eduflow serve --workers N`` on PostgreSQL + Redis), PostgreSQL and Redis. Prints the time
until the course is full, the time until every other student is in line, and p50/p99 per
kind of answer; then checks the outcome in the database (capacity held, positions 1..n).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import Server, free_port, fresh_stack  # noqa: E402


def seed(students: int, capacity: int) -> tuple[int, list[str]]:
    """One published free course of ``capacity`` seats and ``students`` students with tokens."""
    from sqlalchemy import insert

    from eduflow import schema
    from eduflow.db import session_scope
    from eduflow.models.users import Role, User
    from eduflow.security import hash_password
    from eduflow.services import auth, courses, users
    from eduflow.services.permissions import Principal

    schema.upgrade("head")
    with session_scope() as session:
        teacher = users.create_user(
            session, "rush_teacher", "rush_teacher@example.com", "teach-pass-1", "instructor"
        )
        actor = Principal(id=teacher.id, username=teacher.username, role=Role.instructor)
        course = courses.create_course(
            session,
            actor,
            {"title": "The rushed course", "is_published": True, "capacity": capacity},
        )
        shared = hash_password("study-pass-1")
        session.execute(
            insert(User),
            [
                {
                    "username": f"rush{i:05d}",
                    "email": f"rush{i:05d}@example.com",
                    "password_hash": shared,
                    "role": Role.student.value,
                }
                for i in range(students)
            ],
        )
    tokens = []
    with session_scope() as session:
        from sqlmodel import col, select

        for user in session.exec(
            select(User).where(col(User.role) == Role.student.value).order_by(col(User.id))
        ):
            tokens.append(auth.issue_tokens(session, user).access)
    return course.id, tokens


async def rush(base: str, course_id: int, tokens: list[str], connections: int) -> dict[str, Any]:
    """Every student tries to enroll, and joins the line when the course is full."""
    import httpx

    started = time.monotonic()
    kinds: dict[str, list[float]] = {}
    marks: dict[str, float] = {}
    seats = {"taken": 0, "in_line": 0}
    queue: asyncio.Queue[str] = asyncio.Queue()
    for token in tokens:
        queue.put_nowait(token)
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)

    async def one(client: httpx.AsyncClient, token: str) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        t0 = time.monotonic()
        response = await client.post(
            "/api/v1/enrollments/", json={"course": course_id}, headers=headers
        )
        t1 = time.monotonic()
        kind = f"enroll {response.status_code}"
        kinds.setdefault(kind, []).append((t1 - t0) * 1000)
        if response.status_code == 201:
            seats["taken"] += 1
            marks["full"] = t1 - started
            return
        if response.status_code != 409:
            return
        response = await client.post(
            "/api/v1/waitlist/", json={"course": course_id}, headers=headers
        )
        t2 = time.monotonic()
        kinds.setdefault(f"join {response.status_code}", []).append((t2 - t1) * 1000)
        if response.status_code == 201:
            seats["in_line"] += 1
            marks["in_line"] = t2 - started

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            await one(client, queue.get_nowait())

    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=120) as client:
        await asyncio.gather(*(worker(client) for _ in range(connections)))
    return {"kinds": kinds, "marks": marks, "seats": seats, "seconds": time.monotonic() - started}


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0-100) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q / 100))]


def check(course_id: int) -> dict[str, Any]:
    """The outcome in the database: seats, line, positions."""
    from sqlalchemy import text

    from eduflow.db import session_scope

    with session_scope() as session:
        row = session.execute(
            text(
                "SELECT capacity, seats_taken, offers_open, waitlist_count, "
                "(SELECT count(*) FROM enrollments WHERE course_id = :c) AS enrolled, "
                "(SELECT count(*) FROM waitlist_entries WHERE course_id = :c "
                " AND status = 'waiting') AS waiting "
                "FROM courses WHERE id = :c"
            ),
            {"c": course_id},
        ).one()
    return dict(row._mapping)


def main() -> None:
    """Seed, serve, rush, report."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--database-url", default="postgresql://postgres@127.0.0.1:5432/eduflow_bench_wl"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--students", type=int, default=5000)
    parser.add_argument("--capacity", type=int, default=500)
    args = parser.parse_args()

    env = fresh_stack(args.database_url, args.redis_url, "WARNING")
    t0 = time.monotonic()
    course_id, tokens = seed(args.students, args.capacity)
    print(f"seeded {len(tokens)} students in {time.monotonic() - t0:.1f}s", flush=True)

    port = free_port()
    log = Path(tempfile.mkdtemp(prefix="eduflow-bench-wl-")) / "server.log"
    argv = [sys.executable, "-m", "eduflow.cli", "serve", "--workers", str(args.workers)]
    server = Server([*argv, "--port", str(port)], env, port, log)
    try:
        result = asyncio.run(rush(f"http://127.0.0.1:{port}", course_id, tokens, args.connections))
    finally:
        server.stop()
    outcome = check(course_id)
    marks = result["marks"]
    print(
        f"\n{len(tokens)} students, capacity {args.capacity}, {args.connections} connections, "
        f"{args.workers} server workers: {result['seconds']:.2f}s in all"
    )
    print(f"course full after      {marks.get('full', float('nan')):.2f}s")
    print(f"everyone else in line  {marks.get('in_line', float('nan')):.2f}s")
    print("\n| answer | count | p50 ms | p99 ms |\n|---|---:|---:|---:|")
    for kind, values in sorted(result["kinds"].items()):
        print(
            f"| {kind} | {len(values)} | {statistics.median(values):.1f} "
            f"| {percentile(values, 99):.1f} |"
        )
    print(f"\ndatabase: {outcome}")
    ok = (
        outcome["seats_taken"] == outcome["enrolled"] == args.capacity
        and outcome["waiting"] == outcome["waitlist_count"] == len(tokens) - args.capacity
    )
    print("outcome: capacity held, every other student in line" if ok else "outcome: WRONG")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
