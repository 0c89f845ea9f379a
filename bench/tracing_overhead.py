"""What tracing costs a request: CPU time per cached hit and per routed request, in process.

    .venv/bin/python bench/tracing_overhead.py \\
        --database-url postgresql://postgres@127.0.0.1:5432/eduflow_bench \\
        --redis-url redis://127.0.0.1:6379/7 --requests 2000 --rounds 7

The database and the Redis db given are **wiped**. The application is called directly as
an ASGI callable (no sockets, no server), once as ``eduflow serve`` runs it with tracing
off and once with tracing on (spans processed and dropped by an exporter that keeps
nothing, so the figure is EduFlow's and the SDK's, not a collector's). The SDK's sampler
variables apply, e.g. ``OTEL_TRACES_SAMPLER=traceidratio OTEL_TRACES_SAMPLER_ARG=0.1``.
Rounds alternate between the two and the medians of the paired rounds are compared: the
machine is noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Sequence
from typing import Any


def _prepare(database_url: str, redis_url: str) -> int:
    os.environ.update(
        {
            "EDUFLOW_DATABASE_URL": database_url,
            "EDUFLOW_REDIS_URL": redis_url,
            "EDUFLOW_SECRET_KEY": "bench-secret-key-that-is-long-enough-0123456789",
            "EDUFLOW_LOG_LEVEL": "WARNING",
        }
    )
    # Off for the first app; the sampler variables (OTEL_TRACES_SAMPLER…) stay for the second.
    for name in [n for n in os.environ if n.startswith(("OTEL_EXPORTER", "OTEL_TRACES_EXP"))]:
        os.environ.pop(name)
    os.environ.pop("OTEL_SDK_DISABLED", None)
    from sqlalchemy import text

    from eduflow import schema
    from eduflow.cache.stores import get_redis
    from eduflow.db import get_engine, session_scope
    from eduflow.models import Course, User

    with get_engine().begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    schema.upgrade("head")
    client = get_redis()
    assert client is not None
    client.flushdb()
    with session_scope() as session:
        owner = User(username="bench_owner", email="o@example.com", password_hash="x")
        owner.role = "instructor"
        session.add(owner)
        session.flush()
        course = Course(title="Tracing bench", owner_id=owner.id, is_published=True)
        session.add(course)
        session.flush()
        assert course.id is not None
        return course.id


async def _call(app: Any, path: str) -> int:
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"bench"), (b"user-agent", b"bench")],
        "client": ("127.0.0.1", 5000),
        "server": ("bench", 80),
    }
    await app(scope, receive, send)
    return status


async def _round(app: Any, path: str, requests: int) -> float:
    """CPU seconds per request over ``requests`` sequential calls."""
    start = time.process_time()
    for _ in range(requests):
        assert await _call(app, path) == 200
    return (time.process_time() - start) / requests


class _DropSpans:
    """A span exporter that keeps nothing (the SDK's processing is still paid)."""

    def export(self, spans: Sequence[Any]) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Nothing to release."""

    def force_flush(self, timeout_millis: int = 0) -> bool:
        """Nothing buffered."""
        return True


async def _main(args: argparse.Namespace) -> None:
    from eduflow import tracing
    from eduflow.api.app import create_served_app

    course_id = _prepare(args.database_url, args.redis_url)
    plain = create_served_app()  # tracing off: the application itself
    assert not tracing.is_enabled()
    assert tracing.configure("eduflow-bench", exporter=_DropSpans())  # type: ignore[arg-type]
    traced = create_served_app()  # now inside the server span middleware
    scenarios = {
        "cached hit GET /courses/{id}/": f"/api/v1/courses/{course_id}/",
        "routed GET /healthz": "/healthz",
    }
    for app in (plain, traced):  # warm the cache and both code paths
        for path in scenarios.values():
            await _round(app, path, 50)
    print(f"{'scenario':34} {'off µs':>8} {'on µs':>8} {'ratio':>6}")
    for name, path in scenarios.items():
        off: list[float] = []
        on: list[float] = []
        for _ in range(args.rounds):
            off.append(await _round(plain, path, args.requests))
            on.append(await _round(traced, path, args.requests))
        a, b = statistics.median(off) * 1e6, statistics.median(on) * 1e6
        print(f"{name:34} {a:8.1f} {b:8.1f} {b / a:6.2f}")
    tracing.shutdown()


def main() -> None:
    """Parse the arguments and run the paired rounds."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--database-url", default="postgresql://postgres@127.0.0.1:5432/eduflow_bench"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/7")
    parser.add_argument("--requests", type=int, default=2000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=7)
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
