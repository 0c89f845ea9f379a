"""Do the slow requests stay flat as the data grows? Latency at several catalogue sizes.

Usage (each size gets a database of its own, built once and reused by later runs):

    python bench/scale.py --database-url postgresql://postgres@127.0.0.1:5432/eduflow_scale \
        --sizes 10k,100k,1m --requests 300

For each size (``10k``: 10,000 courses, 50,000 students, 100,000 enrollments, 8 lessons
per course; ``100k``: 100,000 / 500,000 / 3,000,000 / 8, the size of the issue's first
measurements; ``1m``: 1,000,000 / 2,000,000 / 10,000,000 / 1 -- lessons are not in the
table, so the largest size keeps them few; ``tiny``: 300 / 1,000 / 3,000 / 2 for a smoke
run) the script creates
``<database>_<size>`` if it does not hold a finished demo seed yet, migrates it and runs
``eduflow demo seed`` (timed: the table's last row), then starts one API process
(``eduflow serve --workers 1``, embedded mode: no Redis) and sends each request of the
table ``--requests`` times, one at a time. Every request is a cache miss: the course list
requests carry a throw-away query parameter, so the response cache never has them. The
CLI rows run the real command (process start included) ``--cli-runs`` times; two more
rows time the same commands' service calls in one process (``2 * --cli-runs`` runs, at
least 10), so that the database's share is seen apart from Python's start-up.

It prints p50 and p99 per request and size, and the growth of p99 from the smallest to
the largest size. ``--drop`` removes the size databases afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, make_url, text

HERE = Path(__file__).resolve().parent
EDUFLOW = str(Path(sys.executable).with_name("eduflow"))
SECRET = "scale-benchmark-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
SIZES = {  # courses, students, enrollments, lessons per course
    "tiny": (300, 1_000, 3_000, 2),
    "10k": (10_000, 50_000, 100_000, 8),
    "100k": (100_000, 500_000, 3_000_000, 8),
    "1m": (1_000_000, 2_000_000, 10_000_000, 1),
}
NO_MATCH = "qzxjvw"


@dataclass(frozen=True, slots=True)
class Probe:
    """One row of the table: who asks for what."""

    name: str
    path: str
    who: str  # anonymous, admin, instructor
    miss: bool = False  # add a throw-away parameter (cached routes)


PROBES = (
    Probe("GET /courses/ page 1", "/api/v1/courses/", "anonymous", miss=True),
    Probe("GET /courses/?search=python", "/api/v1/courses/?search=python", "anonymous", True),
    Probe(
        "GET /courses/?search= (no match)", f"/api/v1/courses/?search={NO_MATCH}", "anonymous", True
    ),
    Probe("GET /courses/?page=4000", "/api/v1/courses/?page=4000", "anonymous", True),
    Probe(
        "GET /courses/?ordering=price&page=2000",
        "/api/v1/courses/?ordering=price&page=2000",
        "anonymous",
        True,
    ),
    Probe("admin GET /enrollments/ page 1", "/api/v1/enrollments/", "admin"),
    Probe("admin GET /enrollments/?page=100000", "/api/v1/enrollments/?page=100000", "admin"),
    Probe("admin GET /enrollments/?cursor= (deep)", "DEEP_CURSOR", "admin"),
    Probe("admin GET /enrollments/?status=pending", "/api/v1/enrollments/?status=pending", "admin"),
    Probe("instructor GET /enrollments/", "/api/v1/enrollments/", "instructor"),
    Probe("admin GET /users/?search=student_4", "/api/v1/users/?search=student_4", "admin"),
)


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def size_url(base: str, size: str) -> str:
    """The database URL of one size."""
    url = make_url(base)
    return url.set(database=f"{url.database}_{size}").render_as_string(hide_password=False)


def env_for(url: str) -> dict[str, str]:
    """The environment of every EduFlow process of a run: embedded mode on ``url``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDUFLOW_")}
    env.update(
        EDUFLOW_DATABASE_URL=url,
        EDUFLOW_SECRET_KEY=SECRET,
        EDUFLOW_LOG_LEVEL="WARNING",
        EDUFLOW_DB_STATEMENT_TIMEOUT_MS="60000",
        EDUFLOW_DB_POOL_SIZE="2",  # one request at a time: a shared server keeps its slots
        EDUFLOW_DB_MAX_OVERFLOW="2",
    )
    return env


def is_seeded(url: str) -> bool:
    """True when the database exists and holds a committed demo seed."""
    admin = make_url(url).set(database="postgres")
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        name = make_url(url).database
        exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
        if exists.scalar() is None:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
            return False
    engine.dispose()
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            found = conn.execute(text("SELECT 1 FROM users WHERE username = 'demo_admin'"))
            return found.scalar() is not None
    except Exception:  # no schema yet
        return False
    finally:
        engine.dispose()


def migrate(url: str) -> None:
    """Bring a reused database to the current schema; after a migration, ``VACUUM ANALYZE``
    (a rewritten table has no statistics and no visibility map, so no index-only scans)."""
    env = env_for(url)
    revision = [EDUFLOW, "db", "current"]
    before = subprocess.run(revision, env=env, check=True, capture_output=True).stdout
    subprocess.run([EDUFLOW, "db", "upgrade"], env=env, check=True, capture_output=True)
    if subprocess.run(revision, env=env, check=True, capture_output=True).stdout != before:
        print(f"[{make_url(url).database}] migrated; VACUUM ANALYZE", flush=True)
        engine = create_engine(url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("VACUUM (ANALYZE)"))
        engine.dispose()


def build(url: str, size: str) -> float | None:
    """Migrate and seed the database of ``size`` unless it is seeded; the seed's seconds."""
    env = env_for(url)
    if is_seeded(url):
        print(f"[{size}] reusing {make_url(url).database}", flush=True)
        migrate(url)
        return None
    courses, students, enrollments, lessons = SIZES[size]
    subprocess.run([EDUFLOW, "db", "upgrade"], env=env, check=True, capture_output=True)
    print(f"[{size}] seeding {courses:,} courses, {enrollments:,} enrollments", flush=True)
    started = time.perf_counter()
    args = ["--courses", str(courses), "--students", str(students)]
    args += ["--enrollments", str(enrollments), "--lessons-per-course", str(lessons), "--json"]
    done = subprocess.run([EDUFLOW, "demo", "seed", *args], env=env, capture_output=True)
    if done.returncode:
        sys.exit(f"seed failed: {done.stderr.decode()[-2000:]}")
    return time.perf_counter() - started


def deep_cursor(url: str) -> str:
    """A cursor two million enrollments deep (or half-way for smaller sizes)."""
    from eduflow.services.enrollment_reads import ENROLLMENT_ORDER

    engine = create_engine(url)
    with engine.connect() as conn:
        total = conn.execute(text("SELECT count(*) FROM enrollments")).scalar_one()
        row = conn.execute(
            text(
                "SELECT created_at, id FROM enrollments ORDER BY created_at DESC, id DESC "
                "OFFSET :n LIMIT 1"
            ),
            {"n": min(2_000_000, total // 2)},
        ).one()
    engine.dispose()
    return "/api/v1/enrollments/?cursor=" + ENROLLMENT_ORDER.encode(list(row))


class Server:
    """``eduflow serve --workers 1`` on a free port."""

    def __init__(self, url: str) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [EDUFLOW, "serve", "--port", str(self.port), "--workers", "1"],
            env=env_for(url),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.base + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        self.stop()
        sys.exit("the server did not start")

    def stop(self) -> None:
        """Stop the server (its process group)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(30)


def token(client: httpx.Client, username: str) -> dict[str, str]:
    """Authorization headers for a demo account."""
    from eduflow.services.demo import DEMO_PASSWORD

    response = client.post(
        "/api/v1/auth/login/", json={"username": username, "password": DEMO_PASSWORD}
    )
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access']}"}


def percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p99 in milliseconds."""
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p99 * 1000


def measure(url: str, requests: int, cli_runs: int) -> dict[str, dict[str, Any]]:
    """p50/p99 (ms) and the status of every probe against one database."""
    results: dict[str, dict[str, Any]] = {}
    deep = deep_cursor(url)
    server = Server(url)
    try:
        with httpx.Client(base_url=server.base, timeout=60) as client:
            who = {
                "anonymous": {},
                "admin": token(client, "demo_admin"),
                "instructor": token(client, "demo_instructor_001"),
            }
            for probe in PROBES:
                path = deep if probe.path == "DEEP_CURSOR" else probe.path
                samples, statuses = [], set()
                for n in range(requests):
                    target = path
                    if probe.miss:
                        target += ("&" if "?" in path else "?") + f"miss={time.time_ns()}{n}"
                    started = time.perf_counter()
                    response = client.get(target, headers=who[probe.who])
                    samples.append(time.perf_counter() - started)
                    statuses.add(response.status_code)
                p50, p99 = percentiles(samples)
                results[probe.name] = {"p50": p50, "p99": p99, "status": sorted(statuses)}
                print(f"  {probe.name}: p50 {p50:.1f} ms, p99 {p99:.1f} ms {statuses}", flush=True)
    finally:
        server.stop()
    # Yesterday's report is stored before it is asked for, as the periodic job does.
    subprocess.run([EDUFLOW, "report", "daily"], env=env_for(url), capture_output=True, check=True)
    for name, args in (
        ("`eduflow admin enrollments list --limit 5`", ["admin", "enrollments", "list"]),
        ("`eduflow report daily` (stored)", ["report", "daily"]),
    ):
        samples = []
        for _ in range(cli_runs):
            started = time.perf_counter()
            extra = ["--limit", "5"] if "list" in args else []
            done = subprocess.run([EDUFLOW, *args, *extra], env=env_for(url), capture_output=True)
            samples.append(time.perf_counter() - started)
        p50, p99 = percentiles(samples)
        results[name] = {"p50": p50, "p99": p99, "status": [done.returncode]}
        print(f"  {name}: p50 {p50:.0f} ms, p99 {p99:.0f} ms", flush=True)
    results.update(service_calls(url, max(10, 2 * cli_runs)))
    return results


SERVICE_CALLS = """
import json, sys, time
from eduflow.db import session_scope
from eduflow.services import enrollments
from eduflow.services.permissions import OPERATOR
from eduflow.services.reports import build_daily_report, daily_report, default_report_day
out = {"list": [], "report": [], "build": []}
for _ in range(int(sys.argv[1])):
    started = time.perf_counter()
    with session_scope() as session:
        enrollments.list_enrollments(session, OPERATOR, limit=5)
    out["list"].append(time.perf_counter() - started)
    started = time.perf_counter()
    with session_scope() as session:
        daily_report(session, default_report_day())
    out["report"].append(time.perf_counter() - started)
    started = time.perf_counter()
    with session_scope() as session:
        build_daily_report(session, default_report_day())
    out["build"].append(time.perf_counter() - started)
print(json.dumps(out))
"""


def service_calls(url: str, runs: int) -> dict[str, dict[str, Any]]:
    """The CLI rows' own work without the process start: the service calls the two
    commands make, timed in one process (its imports and first connection excluded by
    a first, untimed round)."""
    done = subprocess.run(
        [sys.executable, "-c", SERVICE_CALLS, str(runs + 1)],
        env=env_for(url),
        capture_output=True,
        check=True,
    )
    timed = json.loads(done.stdout)
    results = {}
    for key, name in (
        ("list", "`admin enrollments list --limit 5`, service call only"),
        ("report", "`report daily` (stored), service call only"),
        ("build", "`report daily --rebuild`, service call only"),
    ):
        p50, p99 = percentiles(timed[key][1:])
        results[name] = {"p50": p50, "p99": p99, "status": [0]}
        print(f"  {name}: p50 {p50:.1f} ms, p99 {p99:.1f} ms", flush=True)
    return results


def table(
    sizes: list[str], runs: dict[str, dict[str, dict[str, Any]]], seeds: dict[str, Any]
) -> str:
    """The Markdown table: p50/p99 per size, p99 growth from the first to the last size."""
    head = "| request | " + " | ".join(f"{s} p50 / p99 ms" for s in sizes) + " | p99 growth |"
    lines = [head, "|---|" + "---:|" * (len(sizes) + 1)]
    for name in runs[sizes[0]]:
        cells = []
        for size in sizes:
            r = runs[size][name]
            status = "" if r["status"] in ([200], [0]) else f" ({'/'.join(map(str, r['status']))})"
            cells.append(f"{r['p50']:.1f} / {r['p99']:.1f}{status}")
        growth = runs[sizes[-1]][name]["p99"] / max(runs[sizes[0]][name]["p99"], 1e-9)
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {growth:.2f}x |")
    seeded = [f"{seeds[s]:.1f} s" if seeds.get(s) else "reused" for s in sizes]
    lines.append("| `eduflow demo seed` (this size) | " + " | ".join(seeded) + " | |")
    return "\n".join(lines)


def main() -> None:
    """Build what is missing, measure every size, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True, help="PostgreSQL URL; _<size> is added")
    parser.add_argument("--sizes", default="10k,100k,1m", help=f"comma-separated: {list(SIZES)}")
    parser.add_argument("--requests", type=int, default=300, help="requests per row and size")
    parser.add_argument("--cli-runs", type=int, default=5, help="runs of each CLI row")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument("--drop", action="store_true", help="drop the size databases at the end")
    args = parser.parse_args()
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    if unknown := [s for s in sizes if s not in SIZES]:
        sys.exit(f"unknown size(s): {', '.join(unknown)}")
    runs, seeds = {}, {}
    for size in sizes:
        url = size_url(args.database_url, size)
        seeds[size] = build(url, size)
        print(f"[{size}] measuring", flush=True)
        runs[size] = measure(url, args.requests, args.cli_runs)
    print(table(sizes, runs, seeds))
    if args.json:
        args.json.write_text(json.dumps({"runs": runs, "seeds": seeds}, indent=2))
    if args.drop:
        admin = create_engine(make_url(args.database_url).set(database="postgres"))
        with admin.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
            for size in sizes:
                name = make_url(size_url(args.database_url, size)).database
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))


if __name__ == "__main__":
    main()
