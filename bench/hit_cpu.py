"""CPU per request of the fast paths, in one process: no network, no load generator.

On a shared machine a wrk run moves by tens of percent; the CPU one process spends per
request, with the application called directly (one request at a time, the access log
written to a file), moves by a few. Run it from two checkouts, alternating, to compare
them::

    python bench/hit_cpu.py --requests 20000 --rounds 5

It uses the embedded default (a SQLite file in a temporary directory, the in-process
cache), or with ``--database-url`` and ``--redis-url`` (both **wiped**) PostgreSQL and
Redis as ``eduflow serve`` runs in production (the near cache included), and prints one
JSON line: microseconds of CPU per request for a cached anonymous course list, a cached
course detail, the list with a student's bearer token and ``GET /auth/me/``, all
answered in front of the framework (median of the rounds, and the fastest round with
``_min``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any


def asgi_scope(path: str, headers: list[tuple[bytes, bytes]], method: str) -> dict[str, Any]:
    """The HTTP scope a server would pass for this request (also used by the tests that
    call the application directly)."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"bench"), *headers],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }


async def call_app(
    app: Any, path: str, headers: list[tuple[bytes, bytes]], method: str = "GET", body: bytes = b""
) -> tuple[int, dict[bytes, bytes], bytes]:
    """One request straight into the ASGI application: status, headers and body."""
    start: dict[str, Any] = {}
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
        else:
            chunks.append(message.get("body", b""))

    await app(asgi_scope(path, headers, method), receive, send)
    return start["status"], dict(start["headers"]), b"".join(chunks)


async def _measure(app: Any, path: str, headers: list[tuple[bytes, bytes]], n: int) -> float:
    for _ in range(50):  # warm: the entry is cached, the fast path has decided it
        assert (await call_app(app, path, headers))[0] == 200
    start = time.process_time()
    for _ in range(n):
        await call_app(app, path, headers)
    return (time.process_time() - start) / n * 1e6


def main() -> None:
    """Seed, then measure each request kind ``--rounds`` times."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--database-url", help="PostgreSQL database to wipe and use")
    parser.add_argument("--redis-url", help="Redis db to flush and use (with --database-url)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="eduflow-hit-cpu-"))
    os.environ.pop("EDUFLOW_REDIS_URL", None)
    if args.database_url and args.redis_url:
        import sys

        sys.path.insert(0, str(Path(__file__).parent))
        from run import fresh_stack  # type: ignore[import-not-found]

        fresh_stack(args.database_url, args.redis_url)
    os.environ.update(
        {
            "EDUFLOW_DATABASE_URL": args.database_url or f"sqlite:///{workdir / 'bench.db'}",
            "EDUFLOW_ENV": "development",
            "EDUFLOW_SECRET_KEY": "bench-secret-key-bench-secret-key-bench-secret-key-0123",
            "EDUFLOW_BCRYPT_ROUNDS": "4",
            "EDUFLOW_LOG_LEVEL": "INFO",
        }
    )
    out = os.dup(1)
    log = (workdir / "access.log").open("w")
    os.dup2(log.fileno(), 1)  # the access lines go to a file, as in production
    os.dup2(log.fileno(), 2)

    from eduflow import schema
    from eduflow.api.app import create_app
    from eduflow.db import session_scope
    from eduflow.models.users import Role
    from eduflow.services import courses as course_service
    from eduflow.services import users
    from eduflow.services.permissions import Principal

    schema.upgrade("head")
    with session_scope() as session:
        teacher = users.create_user(
            session, "teacher", "t@example.com", "teach-pass-1", "instructor"
        )
        actor = Principal(id=teacher.id, username="teacher", role=Role.instructor)  # type: ignore[arg-type]
        course = course_service.create_course(
            session, actor, {"title": "A course to read", "is_published": True}
        )
        users.create_user(session, "reader", "r@example.com", "read-pass-1", "student")
    app = create_app()
    kinds: dict[str, tuple[str, list[tuple[bytes, bytes]]]] = {
        "course_list": ("/api/v1/courses/", []),
        "course_detail": (f"/api/v1/courses/{course.id}/", []),
    }
    figures: dict[str, list[float]] = {}

    async def run() -> None:
        login = json.dumps({"username": "reader", "password": "read-pass-1"}).encode()
        json_type = [(b"content-type", b"application/json")]
        status, _headers, body = await call_app(
            app, "/api/v1/auth/login/", json_type, method="POST", body=login
        )
        assert status == 200, body
        bearer = [(b"authorization", b"Bearer " + json.loads(body)["access"].encode())]
        kinds["authenticated_list"] = ("/api/v1/courses/", bearer)
        kinds["me"] = ("/api/v1/auth/me/", bearer)
        figures.update({name: [] for name in kinds})
        for _ in range(args.rounds):
            for name, (path, headers) in kinds.items():
                figures[name].append(await _measure(app, path, headers, args.requests))

    asyncio.run(run())
    result = {name: round(statistics.median(v), 2) for name, v in figures.items()}
    # The fastest round too: a neighbour's load only ever adds to a round's CPU time.
    result.update({f"{name}_min": round(min(v), 2) for name, v in figures.items()})
    os.write(out, (json.dumps(result) + "\n").encode())


if __name__ == "__main__":
    main()
