"""Instructions per request of a whole ``eduflow serve`` process, counted by callgrind.

A wrk run on a shared machine moves by tens of percent from one minute to the next; a
count of the instructions the server executes per request does not (it moves by well
under one percent between runs of the same checkout), so two checkouts compare exactly::

    python bench/instructions.py --requests 2000   # from each checkout, in turn

It seeds a PostgreSQL database and a Redis db (both **wiped**) as ``bench/run.py`` does,
starts ``eduflow serve --workers 1`` under ``valgrind --tool=callgrind`` with counting
off, and for each scenario sends a warm-up, turns counting on (``callgrind_control``),
sends ``--requests`` requests one after another over one kept-alive connection, turns it
off and reads the count. Everything the process does in that time is counted: the HTTP
parsing, the application, the access line and metrics, background tasks (refresh-ahead,
the stats flush), the PostgreSQL and Redis client work -- not PostgreSQL's or Redis's own.
Prints one JSON line: instructions per request for each scenario. Needs ``valgrind``
(Debian: ``apt-get install -y valgrind``); one run takes a few minutes.
"""

from __future__ import annotations

import argparse
import functools
import http.client
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import (  # noqa: E402  (bench/run.py's helpers)
    Server,
    free_port,
    fresh_stack,
    lua_paths,
    require_wrk,
    seed,
    serve_argv,
    wrk,
)

API = "/api/v1"


def _callgrind(pid: int, *flags: str) -> None:
    subprocess.run(["callgrind_control", *flags, str(pid)], check=True, capture_output=True)


def _count(pid: int, workdir: Path, name: str) -> int:
    """Dump the counters gathered since the last dump and return their instruction total."""
    before = set(workdir.glob("callgrind.out*"))
    _callgrind(pid, f"--dump={name}")
    for _ in range(100):
        new = set(workdir.glob("callgrind.out*")) - before
        if new:
            (dump,) = new
            for line in dump.read_text().splitlines():
                if line.startswith("totals:"):
                    return int(line.split()[1])
        time.sleep(0.1)
    sys.exit(f"callgrind wrote no dump for {name}")


def _per_request(pid: int, workdir: Path, name: str, send: Callable[[], int]) -> float:
    """Instructions per request while ``send`` runs (it returns how many it sent); what
    the process did before is dumped apart and not counted."""
    tag = "".join(c if c.isalnum() else "_" for c in name)
    _count(pid, workdir, f"before_{tag}")
    _callgrind(pid, "--instr=on")
    sent = send()
    _callgrind(pid, "--instr=off")
    return _count(pid, workdir, tag) / max(1, sent)


def main() -> None:
    """Seed, serve under callgrind, count each scenario."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url", default="postgresql://postgres@127.0.0.1:5432/eduflow_bench_instr"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--requests", type=int, default=2000, help="requests per read scenario")
    parser.add_argument("--enrollments", type=int, default=300, help="enrollment POSTs counted")
    parser.add_argument(
        "--connections",
        type=int,
        default=1,
        help="above 1: the reads are sent by wrk over this many connections for --duration "
        "seconds (the count then includes what concurrency costs), divided by what it sent",
    )
    parser.add_argument("--duration", type=int, default=20, help="seconds per read, with wrk")
    args = parser.parse_args()
    if not shutil.which("valgrind") or not shutil.which("callgrind_control"):
        sys.exit("valgrind is required: apt-get install -y valgrind")

    binary = require_wrk(False) if args.connections > 1 else ""
    env = fresh_stack(args.database_url, args.redis_url)
    seeded = seed(40, max(100, args.enrollments // 10 + 60))
    courses, tokens = seeded["courses"], seeded["tokens"]
    workdir = Path(tempfile.mkdtemp(prefix="eduflow-instructions-"))
    port = free_port()
    argv = [
        "valgrind", "--tool=callgrind", "--instr-atstart=no",
        f"--callgrind-out-file={workdir}/callgrind.out",
        *serve_argv(sys.executable, 1, port),
    ]  # fmt: skip
    server = Server(argv, env, port, workdir / "server.log")
    pid = server.proc.pid
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def request(method: str, path: str, token: str | None = None, body: Any = None) -> int:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status

    reads = {
        "anonymous course list": (f"{API}/courses/", None),
        "anonymous course detail": (f"{API}/courses/{courses[0]}/", None),
        "authenticated course list": (f"{API}/courses/", tokens[0]),
        "GET /auth/me/": (f"{API}/auth/me/", tokens[0]),
    }
    # Each enrollment a new (student, course) pair; the warm-up uses pairs of its own.
    pairs = [(t, c) for t in tokens[1:] for c in courses[:10]]
    results: dict[str, float] = {}

    def one_by_one(path: str, token: str | None) -> int:
        for _ in range(args.requests):
            request("GET", path, token)
        return args.requests

    def with_wrk(path: str, token: str | None) -> int:
        script = lua_paths([path], token)
        url = f"http://127.0.0.1:{port}/"
        done = wrk(binary, url, script, args.connections, args.duration, 2, workdir)
        return int(done["requests"])

    try:
        for name, (path, token) in reads.items():
            for _ in range(50):
                assert request("GET", path, token) == 200
            send = functools.partial(with_wrk if args.connections > 1 else one_by_one, path, token)
            results[name] = _per_request(pid, workdir, name, send)
        warm, counted = pairs[:20], pairs[20 : 20 + args.enrollments]
        for token, course in warm:
            assert request("POST", f"{API}/enrollments/", token, {"course": course}) == 201

        def enroll() -> int:
            for token, course in counted:
                request("POST", f"{API}/enrollments/", token, {"course": course})
            return len(counted)

        results["enrollment POST"] = _per_request(pid, workdir, "enrollment", enroll)
    finally:
        conn.close()
        server.stop()
    print(json.dumps({name: round(value) for name, value in results.items()}))


if __name__ == "__main__":
    main()
