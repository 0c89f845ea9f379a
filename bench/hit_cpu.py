"""CPU per request of the fast paths, in one process: no network, no load generator.

On a shared machine a wrk run moves by tens of percent; the CPU one process spends per
request, with the application called directly (one request at a time, the access log
written to a file), moves by a few. Run it from two checkouts, alternating, to compare
them::

    python bench/hit_cpu.py --requests 20000 --rounds 5

It uses the embedded default (a SQLite file in a temporary directory, the in-process
cache) and prints one JSON line: microseconds of CPU per request for a cached anonymous
course list and a cached course detail, both answered in front of the framework (median
of the rounds).
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
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="eduflow-hit-cpu-"))
    os.environ.update(
        {
            "EDUFLOW_DATABASE_URL": f"sqlite:///{workdir / 'bench.db'}",
            "EDUFLOW_ENV": "development",
            "EDUFLOW_SECRET_KEY": "bench-secret-key-bench-secret-key-bench-secret-key-0123",
            "EDUFLOW_BCRYPT_ROUNDS": "4",
            "EDUFLOW_LOG_LEVEL": "INFO",
        }
    )
    os.environ.pop("EDUFLOW_REDIS_URL", None)
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
    app = create_app()

    kinds = {
        "course_list": ("/api/v1/courses/", []),
        "course_detail": (f"/api/v1/courses/{course.id}/", []),
    }
    figures: dict[str, list[float]] = {name: [] for name in kinds}

    async def run() -> None:
        for _ in range(args.rounds):
            for name, (path, headers) in kinds.items():
                figures[name].append(await _measure(app, path, headers, args.requests))

    asyncio.run(run())
    result = {name: round(statistics.median(v), 2) for name, v in figures.items()}
    os.write(out, (json.dumps(result) + "\n").encode())


if __name__ == "__main__":
    main()
