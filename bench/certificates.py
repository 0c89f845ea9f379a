"""Certificate PDF: one generation against one cached answer, over real HTTP.

Usage (a PostgreSQL database and a Redis db of your own; both are wiped):

    .venv/bin/python bench/certificates.py \
        --database-url postgresql://postgres@127.0.0.1:5432/eduflow_bench_certs \
        --redis-url redis://127.0.0.1:6379/8 --certificates 40

Seeds N certificates, starts ``eduflow serve`` (one process, PostgreSQL + Redis), then for
each certificate asks for its PDF twice in a row: the first answer renders it (fpdf2, font
subset, QR code) and stores it in the cache, the second comes from the cache. Each pair
runs back to back, so both halves see the same machine load; the medians of the pairs and
their ratio are printed, with the in-process render time of the same documents (no HTTP)
and the PDF size.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def free_port() -> int:
    """An unused loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def seed(n: int) -> list[str]:
    """N certificates with names in several scripts; their serials."""
    from sqlalchemy import text

    from eduflow.db import session_scope
    from eduflow.models import Certificate, Course, User
    from eduflow.services.certificates import new_serial

    names = ["Ada Lovelace", "Анна Каренина", "Αλέξανδρος Παπαδόπουλος", "Łukasz Żółć"]
    with session_scope() as s:
        s.execute(text("TRUNCATE users, courses, certificates RESTART IDENTITY CASCADE"))
        teacher = User(
            username="teacher", email="t@bench.local", password_hash="x", role="instructor"
        )
        s.add(teacher)
        s.flush()
        course = Course(title="Введение в Python: Ελληνικά", is_published=True, owner_id=teacher.id)
        s.add(course)
        s.flush()
        serials = []
        for i in range(n):
            student = User(username=f"student{i}", email=f"s{i}@bench.local", password_hash="x")
            s.add(student)
            s.flush()
            serial = new_serial()
            s.add(
                Certificate(
                    serial=serial,
                    student_id=student.id,
                    course_id=course.id,
                    student_name=f"{names[i % len(names)]} {i}",
                    course_title=course.title,
                )
            )
            serials.append(serial)
    return serials


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--certificates", type=int, default=40)
    args = parser.parse_args()
    os.environ.update(
        EDUFLOW_DATABASE_URL=args.database_url,
        EDUFLOW_REDIS_URL=args.redis_url,
        EDUFLOW_SECRET_KEY="bench-secret-key-that-is-long-enough-0123456789",
        EDUFLOW_LOG_LEVEL="WARNING",
    )
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import httpx
    from run import recreate_database

    from eduflow import schema
    from eduflow.cache.stores import get_redis

    recreate_database(args.database_url)
    schema.upgrade("head")
    client = get_redis()
    assert client is not None
    client.flushdb()
    serials = seed(args.certificates)

    port = free_port()
    log = Path(tempfile.mkdtemp()) / "serve.log"
    eduflow = str(Path(sys.executable).with_name("eduflow"))
    with log.open("wb") as out:
        server = subprocess.Popen(
            [eduflow, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=os.environ.copy(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        base = f"http://127.0.0.1:{port}/api/v1/certificates"
        with httpx.Client(timeout=30) as http:
            deadline = time.monotonic() + 60
            while True:
                try:
                    http.get(f"http://127.0.0.1:{port}/healthz")
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        sys.exit(f"server did not start; see {log}")
                    time.sleep(0.2)
            # Warm-up (imports, font files, connections) on a serial left out of the figures.
            http.get(f"{base}/{serials[0]}/pdf/").raise_for_status()
            firsts, seconds, size = [], [], 0
            for serial in serials[1:]:
                t0 = time.perf_counter()
                first = http.get(f"{base}/{serial}/pdf/")
                t1 = time.perf_counter()
                second = http.get(f"{base}/{serial}/pdf/")
                t2 = time.perf_counter()
                assert first.status_code == second.status_code == 200
                assert first.content == second.content
                firsts.append((t1 - t0) * 1000)
                seconds.append((t2 - t1) * 1000)
                size = len(first.content)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)

    from eduflow.db import session_scope
    from eduflow.services.certificate_files import render_pdf
    from eduflow.services.certificates import find_by_serial

    renders = []
    with session_scope(read_only=True) as s:
        certificates = [find_by_serial(s, serial) for serial in serials[:10]]
        render_pdf(certificates[0])
        for certificate in certificates:
            t0 = time.perf_counter()
            render_pdf(certificate)
            renders.append((time.perf_counter() - t0) * 1000)

    gen, hit = statistics.median(firsts), statistics.median(seconds)
    print(f"pairs: {len(firsts)}  PDF size: {size} bytes")
    print(f"first GET (renders + caches): median {gen:.1f} ms, max {max(firsts):.1f} ms")
    print(f"second GET (from the cache):  median {hit:.1f} ms, max {max(seconds):.1f} ms")
    print(f"ratio generation / cached: {gen / hit:.1f}x")
    print(f"in-process render alone: median {statistics.median(renders):.1f} ms")


if __name__ == "__main__":
    main()
