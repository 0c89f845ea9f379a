"""Load benchmark of the HTTP API against a bare ASGI app on the same server settings.

Usage (a PostgreSQL database and a Redis db of your own: both are wiped):

    python bench/run.py --database-url postgresql://postgres@127.0.0.1:5432/eduflow_bench \
        --redis-url redis://127.0.0.1:6379/7 --workers 2 --connections 64 --duration 10

Needs ``wrk`` (Debian/Ubuntu: ``apt-get install -y wrk``; ``--install-wrk`` runs that).
Steps: recreate and migrate the database, seed it through the services (instructors,
courses with lessons, students with access tokens), start ``eduflow serve --workers N``
on PostgreSQL + Redis, drive each scenario with wrk, then start a minimal ASGI app
(``bench/ceiling.py``) under the same uvicorn settings that answers the same bytes as
the anonymous course list (body and headers): the ceiling of a Python server on this
machine. Prints
requests/s, p50 and p99 per scenario, its ratio to the ceiling, and the cache hit rate
and database transactions per request measured around each scenario.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SECRET = "benchmark-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
HAMMER_USER = "hammer"
HAMMER_PASSWORD = "hammer-password-1"

# wrk scripts: rotate paths / tokens / enrollment pairs; print one JSON line at the end.
LUA_DONE = """
done = function(summary, latency, requests)
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout
  io.write(string.format(
    'RESULT {"requests": %d, "seconds": %.3f, "p50_ms": %.3f, "p99_ms": %.3f, "errors": %d}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, errors))
end
"""


def lua_paths(paths: list[str], token: str | None = None) -> str:
    """Round-robin GETs over ``paths`` (per connection offset), optionally with a token."""
    items = ", ".join(json.dumps(p) for p in paths)
    auth = f'wrk.headers["Authorization"] = "Bearer {token}"\n' if token else ""
    return (
        f"local paths = {{{items}}}\nlocal i = 0\n{auth}"
        "request = function()\n  i = i + 1\n"
        "  return wrk.format('GET', paths[(i % #paths) + 1])\nend\n" + LUA_DONE
    )


def lua_enroll(tokens: list[str], course_ids: list[int], offset: int = 0) -> str:
    """POST /enrollments/: every request a new (student, course) pair. Each wrk thread
    takes every 64th number of the sequence from its own (``tid``) on, so a run's numbers
    all fall in the residues ``offset + tid`` modulo 64: a later rep (``offset`` moved by
    the number of threads) enrolls anew however far its threads get."""
    toks = ", ".join(json.dumps(t) for t in tokens)
    courses = ", ".join(str(c) for c in course_ids)
    return (
        f"local tokens = {{{toks}}}\nlocal courses = {{{courses}}}\n"
        "local counter = 0\nlocal threads = 0\n"
        "setup = function(thread)\n  thread:set('tid', threads)\n  threads = threads + 1\nend\n"
        "init = function(args)\n  counter = 0\nend\n"
        "request = function()\n"
        f"  local n = {offset} + counter * 64 + tid\n  counter = counter + 1\n"
        "  local s = (n % #tokens) + 1\n  local c = (math.floor(n / #tokens) % #courses) + 1\n"
        "  return wrk.format('POST', '/api/v1/enrollments/', {\n"
        "    ['Authorization'] = 'Bearer ' .. tokens[s],\n"
        "    ['Content-Type'] = 'application/json'}, '{\"course\": ' .. courses[c] .. '}')\n"
        "end\n" + LUA_DONE
    )


def lua_login(username: str, password: str) -> str:
    """POST /auth/login/ with the right password (full bcrypt cost every time)."""
    body = json.dumps({"username": username, "password": password}).replace("'", "\\'")
    return (
        "wrk.method = 'POST'\n"
        f"wrk.body = '{body}'\n"
        "wrk.headers['Content-Type'] = 'application/json'\n" + LUA_DONE
    )


def parse_result(output: str) -> dict[str, Any]:
    """The JSON line the wrk scripts print when done."""
    line = next(x for x in output.splitlines() if x.startswith("RESULT "))
    result: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
    return result


def free_port() -> int:
    """An unused TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def require_wrk(install: bool) -> str:
    """The wrk binary; installs it from the distribution's packages when asked."""
    path = shutil.which("wrk")
    if path:
        return path
    if install:
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
        path = shutil.which("wrk")
    if not path:
        sys.exit("wrk is required: apt-get install -y wrk (or run with --install-wrk)")
    return path


def recreate_database(url: str) -> None:
    """Drop and create the benchmark database."""
    import psycopg
    from sqlalchemy.engine import make_url

    sa_url = make_url(url)
    admin = sa_url.set(database="postgres").set(drivername="postgresql")
    with psycopg.connect(
        admin.render_as_string(hide_password=False), autocommit=True, connect_timeout=5
    ) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{sa_url.database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{sa_url.database}"')


def stack_env(
    database_url: str, redis_url: str, log_level: str = "INFO", **extra: str
) -> dict[str, str]:
    """The server environment of a benchmark on ``database_url`` and ``redis_url``."""
    return {
        **os.environ,
        "EDUFLOW_ENV": "development",
        "EDUFLOW_DATABASE_URL": database_url,
        "EDUFLOW_REDIS_URL": redis_url,
        "EDUFLOW_SECRET_KEY": SECRET,
        "EDUFLOW_ACCESS_TOKEN_TTL": "7200",
        "EDUFLOW_BCRYPT_ROUNDS": "4",
        "EDUFLOW_LOG_LEVEL": os.environ.get("EDUFLOW_LOG_LEVEL", log_level),
        **extra,
    }


def fresh_stack(
    database_url: str, redis_url: str, log_level: str = "INFO", **extra: str
) -> dict[str, str]:
    """The server environment of a benchmark (also set in this process, which seeds),
    with its Redis db flushed and its database dropped and created again."""
    env = stack_env(database_url, redis_url, log_level, **extra)
    os.environ.update(env)
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    recreate_database(database_url)
    return env


def seed(courses: int, students: int) -> dict[str, Any]:
    """Fill the database through the services; returns ids and tokens for the scenarios."""
    from eduflow import schema
    from eduflow.config import get_settings, reset_settings
    from eduflow.db import session_scope
    from eduflow.models.users import Role
    from eduflow.services import auth, lessons, users
    from eduflow.services import courses as course_service
    from eduflow.services.permissions import Principal

    schema.upgrade("head")
    course_ids: list[int] = []
    with session_scope() as session:
        teachers = [
            users.create_user(
                session, f"teacher{i}", f"teacher{i}@example.com", "teach-pass-1", "instructor"
            )
            for i in range(10)
        ]
        for i in range(courses):
            teacher = teachers[i % len(teachers)]
            actor = Principal(
                id=teacher.id, username=teacher.username, role=Role(teacher.role), session_id=""
            )  # type: ignore[arg-type]
            course = course_service.create_course(
                session,
                actor,
                {
                    "title": f"Course {i:04d}: a practical introduction",
                    "description": "Learn by doing, one small lesson at a time. " * 3,
                    "price": "0" if i % 2 == 0 else "19.90",
                    "is_published": i % 10 != 9,
                    "capacity": None,
                },
            )
            course_ids.append(course.id)
            for j in range(3):
                lessons.create_lesson(
                    session,
                    actor,
                    {"course": course.id, "title": f"Lesson {j + 1}", "content": "Body " * 50},
                )
    tokens: list[str] = []
    with session_scope() as session:
        for i in range(students):
            user = users.create_user(
                session, f"student{i}", f"student{i}@example.com", "study-pass-1"
            )
            tokens.append(auth.issue_tokens(session, user).access)
    # The login hammer uses the production password cost, whatever the seeding used.
    os.environ["EDUFLOW_BCRYPT_ROUNDS"] = os.environ.get("BENCH_LOGIN_ROUNDS", "12")
    reset_settings()
    with session_scope() as session:
        users.create_user(session, HAMMER_USER, "hammer@example.com", HAMMER_PASSWORD)
    rounds = get_settings().bcrypt_rounds
    print(f"seeded {courses} courses, {students} students (bcrypt {rounds} for the login user)")
    published = [c for i, c in enumerate(course_ids) if i % 10 != 9]
    return {"courses": published, "tokens": tokens}


def warm_up(base: str, detail_paths: list[str], token: str) -> None:
    """Cache the list and every detail once, and warm every worker process for the
    signed-in scenarios (cold-start costs such as the first database connection are not
    what the scenarios measure)."""
    for path in ["/api/v1/courses/", *detail_paths]:
        urllib.request.urlopen(base + path, timeout=10).read()
    for path in ["/api/v1/courses/", "/api/v1/auth/me/"] * 10:
        warm = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {token}"})
        urllib.request.urlopen(warm, timeout=10).read()


def serve_argv(python: str, workers: int, port: int) -> list[str]:
    """The command line of ``eduflow serve`` under the interpreter ``python``."""
    return [python, "-m", "eduflow.cli", "serve", "--workers", str(workers), "--port", str(port)]


class Server:
    """A uvicorn-served app in its own process group."""

    def __init__(
        self, argv: list[str], env: dict[str, str], port: int, log: Path, cwd: Path | None = None
    ) -> None:
        self.port = port
        self.log = log.open("wb")
        self.proc = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return
            except OSError:
                if self.proc.poll() is not None:
                    sys.exit(f"server exited early; see {log}")
                time.sleep(0.2)
        sys.exit(f"server did not start; see {log}")

    def stop(self) -> None:
        """SIGTERM the process group and wait."""
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.close()


def wrk(
    binary: str, url: str, script: str, connections: int, duration: int, threads: int, workdir: Path
) -> dict[str, Any]:
    """Run wrk once with ``script``; its JSON result line."""
    path = workdir / f"s{time.monotonic_ns()}.lua"
    path.write_text(script)
    out = subprocess.run(
        [
            binary,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{duration}s",
            "--timeout",
            "5s",
            "-s",
            str(path),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result = parse_result(out)
    result["rps"] = result["requests"] / result["seconds"]
    return result


def median_run(reps: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of each figure over the reps of one scenario (the first rep's other keys)."""
    import statistics

    merged = dict(reps[0])
    for key, value in reps[0].items():
        values = [r[key] for r in reps if isinstance(r.get(key), int | float)]
        if isinstance(value, int | float) and len(values) == len(reps):
            merged[key] = statistics.median(values)
    return merged


def metrics(base: str) -> dict[str, float]:
    """Cache counters summed over namespaces and worker processes, from /metrics."""
    text = urllib.request.urlopen(base + "/metrics", timeout=10).read().decode()
    totals: dict[str, float] = {}
    for line in text.splitlines():
        for name in ("hits", "misses", "rebuilds", "errors"):
            if line.startswith(f"eduflow_cache_{name}_total{{"):
                totals[name] = totals.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
    return totals


def cpu_seconds(group: int) -> float:
    """CPU time (user + system) used so far by the processes of a process group: the
    server's cost per request, which moves much less than requests/s on a shared machine."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[2]) == group:  # pgrp
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def machine_cpu_seconds() -> float:
    """CPU time the whole machine has been busy so far (every core, every process: wrk,
    PostgreSQL and Redis included), from ``/proc/stat``."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait; steal (the hypervisor's) is left out
    return (sum(fields[:7]) - idle) / os.sysconf("SC_CLK_TCK")


def db_transactions(database_url: str) -> int:
    """Committed + rolled-back transactions of the benchmark database so far."""
    import psycopg
    from sqlalchemy.engine import make_url

    sa_url = make_url(database_url)
    dsn = sa_url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database"
            " WHERE datname = current_database()"
        ).fetchone()
    return int(row[0]) if row else 0


def main() -> None:
    """Run every scenario and print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--database-url", default="postgresql://postgres@127.0.0.1:5432/eduflow_bench"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/7")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--duration", type=int, default=10, help="seconds per scenario")
    parser.add_argument("--courses", type=int, default=200)
    parser.add_argument("--students", type=int, default=2000)
    parser.add_argument("--only", nargs="*", help="scenario names to run")
    parser.add_argument(
        "--reps",
        type=int,
        default=1,
        help="run the scenarios this many times, interleaved (reads after writes included); "
        "the table shows medians, the per-rep figures are printed as they come",
    )
    parser.add_argument("--install-wrk", action="store_true")
    parser.add_argument("--keep-logs", action="store_true", help="keep the server logs")
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="record each scenario's server workers with py-spy (collapsed stacks) into DIR",
    )
    args = parser.parse_args()
    if args.reps * args.threads > 64:
        parser.error("--reps x --threads must be at most 64 (the enrollments' pairs run out)")

    binary = require_wrk(args.install_wrk)
    workdir = Path(tempfile.mkdtemp(prefix="eduflow-bench-"))
    env = fresh_stack(
        args.database_url, args.redis_url, EDUFLOW_LOGIN_MAX_FAILURES_PER_IP="1000000"
    )
    data = seed(args.courses, args.students)
    env["EDUFLOW_BCRYPT_ROUNDS"] = os.environ["EDUFLOW_BCRYPT_ROUNDS"]

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    eduflow = serve_argv(sys.executable, args.workers, port)
    courses = data["courses"][:100]
    token = data["tokens"][0]
    detail_paths = [f"/api/v1/courses/{c}/" for c in courses]
    scenarios: list[tuple[str, str, str]] = [
        ("anonymous course list", "/api/v1/courses/", lua_paths(["/api/v1/courses/"])),
        ("anonymous course detail", "/", lua_paths(detail_paths)),
        ("authenticated course list", "/", lua_paths(["/api/v1/courses/"], token)),
        ("GET /auth/me/", "/", lua_paths(["/api/v1/auth/me/"], token)),
        # Writes last: their aftermath (autovacuum, the outbox marks) must not fall on reads.
        ("anonymous list under login load", "/", ""),
        ("enrollment POST", "/", ""),
    ]

    def under_login_load() -> dict[str, Any]:
        """The anonymous list while 8 more connections log in (bcrypt at production cost)."""
        hammer = subprocess.Popen(
            [
                binary,
                "-t1",
                "-c8",
                f"-d{args.duration + 2}s",
                "--timeout",
                "10s",
                "-s",
                str(_write(workdir, lua_login(HAMMER_USER, HAMMER_PASSWORD))),
                base + "/api/v1/auth/login/",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(1)
        result = wrk(
            binary,
            base + "/api/v1/courses/",
            lua_paths(["/api/v1/courses/"]),
            args.connections,
            args.duration,
            args.threads,
            workdir,
        )
        out = hammer.communicate()[0]
        login = parse_result(out)
        result["logins_per_s"] = login["requests"] / login["seconds"]
        return result

    runs: dict[str, list[dict[str, Any]]] = {}
    server = Server(eduflow, env, port, workdir / "eduflow.log")

    def run_scenario(name: str, script: str) -> dict[str, Any]:
        """One wrk run of ``script``, with the server's figures around it."""
        before, tx_before = metrics(base), db_transactions(args.database_url)
        cpu_before, busy_before = cpu_seconds(server.proc.pid), machine_cpu_seconds()
        spies = profile(server, name, args.duration, args.profile) if args.profile else []
        result = wrk(
            binary, base + "/", script, args.connections, args.duration, args.threads, workdir
        )
        for spy in spies:
            spy.wait()
        cpu = cpu_seconds(server.proc.pid) - cpu_before
        busy = machine_cpu_seconds() - busy_before
        after, tx_after = metrics(base), db_transactions(args.database_url)
        hits = after.get("hits", 0) - before.get("hits", 0)
        lookups = hits + after.get("misses", 0) - before.get("misses", 0)
        result["hit_rate"] = hits / lookups if lookups else None
        result["db_tx_per_request"] = (tx_after - tx_before) / max(1, result["requests"])
        result["cpu_ms_per_request"] = cpu * 1000 / max(1, result["requests"])
        result["machine_ms_per_request"] = busy * 1000 / max(1, result["requests"])
        return result

    try:
        warm_up(base, detail_paths, token)
        with urllib.request.urlopen(base + "/api/v1/courses/", timeout=10) as reply:
            body = reply.read()
            # The ceiling answers with these very headers too (uvicorn adds the date; this
            # client asked for "connection: close", wrk keeps its connections open).
            headers = [
                (k.lower(), v)
                for k, v in reply.getheaders()
                if k.lower() not in ("date", "connection")
            ]
        for rep in range(1, args.reps + 1):
            for name, _path, script in scenarios:
                if args.only and name not in args.only:
                    continue
                if name == "enrollment POST":
                    offset = (rep - 1) * args.threads  # up to 64 / threads reps
                    script = lua_enroll(data["tokens"], data["courses"], offset)
                result = under_login_load() if not script else run_scenario(name, script)
                runs.setdefault(name, []).append(result)
                print(
                    f"  rep {rep} {name}: {result['rps']:.0f} req/s, "
                    f"p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms",
                    flush=True,
                )
    finally:
        server.stop()

    results = {name: median_run(reps) for name, reps in runs.items()}
    (workdir / "body.json").write_bytes(body)
    (workdir / "headers.json").write_text(json.dumps(headers))
    ceiling_env = {
        **env,
        "CEILING_BODY": str(workdir / "body.json"),
        "CEILING_HEADERS": str(workdir / "headers.json"),
    }
    ceiling_argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "ceiling:app",
        "--app-dir",
        str(HERE),
        "--workers",
        str(args.workers),
        "--port",
        str(port),
        "--no-access-log",
        "--backlog",
        "2048",
        "--no-server-header",
        "--log-level",
        "warning",
    ]
    ceiling = Server(ceiling_argv, ceiling_env, port, workdir / "ceiling.log")
    try:
        cpu_before, busy_before = cpu_seconds(ceiling.proc.pid), machine_cpu_seconds()
        spies = profile(ceiling, "ceiling", args.duration, args.profile) if args.profile else []
        top = wrk(
            binary,
            base + "/",
            lua_paths(["/api/v1/courses/"]),
            args.connections,
            args.duration,
            args.threads,
            workdir,
        )
        for spy in spies:
            spy.wait()
        requests = max(1, top["requests"])
        top["cpu_ms_per_request"] = (cpu_seconds(ceiling.proc.pid) - cpu_before) * 1000 / requests
        top["machine_ms_per_request"] = (machine_cpu_seconds() - busy_before) * 1000 / requests
    finally:
        ceiling.stop()

    print()
    print(
        f"{args.workers} workers, {args.connections} connections, "
        f"{args.duration}s per scenario, wrk {args.threads} threads"
    )
    columns = ("req/s", "p50 ms", "p99 ms", "ceiling", "hits", "db tx/req", "server cpu", "all cpu")
    print(f"{'scenario':34}" + "".join(f" {c:>10}" for c in columns) + "     errors")
    rows = []
    for name, r in [("bare ASGI ceiling (same bytes)", top), *results.items()]:
        hit = f"{r['hit_rate'] * 100:.2f}%" if r.get("hit_rate") is not None else "-"
        tx = f"{r['db_tx_per_request']:.3f}" if "db_tx_per_request" in r else "-"
        cpu = f"{r['cpu_ms_per_request']:.3f}" if "cpu_ms_per_request" in r else "-"
        busy = f"{r['machine_ms_per_request']:.3f}" if "machine_ms_per_request" in r else "-"
        rows.append((name, r, f"{r['rps'] / top['rps'] * 100:.0f}%", hit, tx, cpu, busy))
    for name, r, *texts in rows:
        figures = f"{r['rps']:10.0f} {r['p50_ms']:10.2f} {r['p99_ms']:10.2f}"
        print(
            f"{name:34} {figures}"
            + "".join(f" {t:>10}" for t in texts)
            + f" {int(r['errors']):10d}"
        )
    print(
        "server cpu / all cpu: CPU ms per request of the server's processes / of the whole"
        " machine (wrk, PostgreSQL and Redis included)"
    )
    if args.reps > 1:
        print(f"p99 ms by rep ({args.reps} reps, interleaved):")
        for name, reps in runs.items():
            print(f"  {name:34}" + "".join(f" {r['p99_ms']:9.2f}" for r in reps))
    loaded = results.get("anonymous list under login load")
    if loaded:
        print(f"(logins during the login-load scenario: {loaded['logins_per_s']:.1f}/s)")
    if args.keep_logs:
        print(f"logs: {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)


def profile(server: Server, scenario: str, duration: int, outdir: str) -> list[Any]:
    """Start ``py-spy record`` (collapsed stacks, idle frames left out) on every worker."""
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    children = subprocess.run(
        ["pgrep", "-P", str(server.proc.pid)], capture_output=True, text=True
    ).stdout.split()
    slug = "".join(c if c.isalnum() else "-" for c in scenario).strip("-")
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    return [
        subprocess.Popen(
            [
                *(spy, "record", "--nonblocking", "--gil", "--format", "raw", "--rate", "250"),
                *("--duration", str(duration), "--pid", pid),
                *("--output", str(out / f"{slug}-{pid}.txt")),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for pid in children
    ]


def _write(workdir: Path, script: str) -> Path:
    path = workdir / f"s{time.monotonic_ns()}.lua"
    path.write_text(script)
    return path


if __name__ == "__main__":
    main()
