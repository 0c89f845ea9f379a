"""Two checkouts served side by side, their reads compared in short alternating wrk bursts.

A ``bench/run.py`` run of one checkout and then of the other, minutes apart, lands on
different moments of a shared machine, whose speed moves by tens of percent from one
minute to the next. Here both servers run at once (on their own database and Redis db,
each seeded by its own code) and take turns: a burst of ``--burst`` seconds on one, then
on the other, the order swapped every round (A B, B A, ...) so that a drift in the
machine's speed falls on both alike. Each round gives a ratio B / A of two bursts a few
seconds apart; the median of the ratios is the comparison::

    python bench/ab.py --a <checkout> --b <checkout> \\
        --database-url postgresql://postgres@127.0.0.1:5432/eduflow_ab \\
        --redis-urls redis://127.0.0.1:6379/8 redis://127.0.0.1:6379/9

Each checkout needs its own virtualenv (``make install`` in it): its servers run
``<checkout>/.venv/bin/python -m eduflow.cli serve`` from the checkout's directory. The
databases ``<name>_a`` and ``<name>_b`` and both Redis dbs are **wiped**. The server not
being measured is idle (no load, no background work but its timers) during the other's
burst. Scenarios: the anonymous course list, an anonymous course detail (round robin over
100 courses), the course list with a student's token and ``GET /auth/me/``, as in
``bench/run.py``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
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
    stack_env,
    warm_up,
    wrk,
)


def prepare(database_url: str, redis_url: str, courses: int, students: int) -> None:
    """Wipe, migrate and seed with the code of the running checkout; print the seeded ids."""
    fresh_stack(database_url, redis_url)
    data = seed(courses, students)
    print("SEEDED " + json.dumps({"courses": data["courses"], "token": data["tokens"][0]}))


def _prepared(checkout: Path, database_url: str, redis_url: str, args: Any) -> dict[str, Any]:
    out = subprocess.run(
        [
            str(checkout / ".venv" / "bin" / "python"),
            str(Path(__file__).resolve()),
            "--prepare",
            database_url,
            redis_url,
            "--courses",
            str(args.courses),
            "--students",
            str(args.students),
        ],
        cwd=checkout,
        capture_output=True,
        text=True,
    )
    line = next((x for x in out.stdout.splitlines() if x.startswith("SEEDED ")), None)
    if out.returncode != 0 or line is None:
        sys.exit(f"seeding with {checkout} failed:\n{out.stderr[-2000:]}")
    seeded: dict[str, Any] = json.loads(line.removeprefix("SEEDED "))
    return seeded


def main() -> None:
    """Seed both, serve both, alternate the bursts, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", type=Path, help="the first checkout (before)")
    parser.add_argument("--b", type=Path, help="the second checkout (after)")
    parser.add_argument("--database-url")
    parser.add_argument("--redis-urls", nargs=2, metavar="URL")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--burst", type=int, default=3, help="seconds per burst")
    parser.add_argument("--rounds", type=int, default=12, help="bursts of each, per scenario")
    parser.add_argument("--courses", type=int, default=200)
    parser.add_argument("--students", type=int, default=2000)
    parser.add_argument("--only", nargs="*", help="scenario names to run")
    parser.add_argument("--prepare", nargs=2, metavar=("DATABASE_URL", "REDIS_URL"))
    args = parser.parse_args()
    if args.prepare:
        prepare(args.prepare[0], args.prepare[1], args.courses, args.students)
        return
    if not (args.a and args.b and args.database_url and args.redis_urls):
        parser.error("--a, --b, --database-url and --redis-urls are required")

    binary = require_wrk(False)
    workdir = Path(tempfile.mkdtemp(prefix="eduflow-ab-"))
    base_db = args.database_url.rsplit("/", 1)
    sides: dict[str, dict[str, Any]] = {}
    for name, checkout, redis_url in (
        ("a", args.a.resolve(), args.redis_urls[0]),
        ("b", args.b.resolve(), args.redis_urls[1]),
    ):
        database_url = f"{base_db[0]}/{base_db[1]}_{name}"
        data = _prepared(checkout, database_url, redis_url, args)
        print(f"seeded {name} ({checkout})", flush=True)
        sides[name] = {
            "checkout": checkout,
            "data": data,
            "port": free_port(),
            "env": stack_env(database_url, redis_url),
        }
    servers: dict[str, Server] = {}
    try:
        for name, side in sides.items():
            python = str(side["checkout"] / ".venv" / "bin" / "python")
            argv = serve_argv(python, args.workers, side["port"])
            servers[name] = Server(
                argv, side["env"], side["port"], workdir / f"{name}.log", cwd=side["checkout"]
            )
        results = compare(args, binary, workdir, sides)
    finally:
        for server in servers.values():
            server.stop()
    shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(
        f"{args.workers} workers, {args.connections} connections, {args.rounds} rounds of "
        f"{args.burst} s bursts, wrk {args.threads} threads"
    )
    print(f"a = {args.a}\nb = {args.b}")
    print(f"{'scenario':28} {'a req/s':>10} {'b req/s':>10} {'b/a':>8} {'b/a range':>16}")
    for name, (a_rps, b_rps, ratios) in results.items():
        print(
            f"{name:28} {statistics.median(a_rps):10.0f} {statistics.median(b_rps):10.0f} "
            f"{statistics.median(ratios):8.3f} {min(ratios):7.3f}-{max(ratios):.3f}"
        )


def compare(
    args: Any, binary: str, workdir: Path, sides: dict[str, dict[str, Any]]
) -> dict[str, tuple[list[float], list[float], list[float]]]:
    """Every scenario's bursts: req/s of a, of b, and the ratio b / a of each round."""

    def scripts(data: dict[str, Any]) -> dict[str, str]:
        details = [f"/api/v1/courses/{c}/" for c in data["courses"][:100]]
        return {
            "anonymous course list": lua_paths(["/api/v1/courses/"]),
            "anonymous course detail": lua_paths(details),
            "authenticated course list": lua_paths(["/api/v1/courses/"], data["token"]),
            "GET /auth/me/": lua_paths(["/api/v1/auth/me/"], data["token"]),
        }

    per_side = {name: scripts(side["data"]) for name, side in sides.items()}
    for side in sides.values():  # every entry cached, every worker warm
        details = [f"/api/v1/courses/{c}/" for c in side["data"]["courses"][:100]]
        warm_up(f"http://127.0.0.1:{side['port']}", details, side["data"]["token"])
    results: dict[str, tuple[list[float], list[float], list[float]]] = {}
    for scenario in per_side["a"]:
        if args.only and scenario not in args.only:
            continue
        rps: dict[str, list[float]] = {"a": [], "b": []}
        for name, side in sides.items():  # one warm-up burst each
            url = f"http://127.0.0.1:{side['port']}/"
            wrk(binary, url, per_side[name][scenario], args.connections, 1, args.threads, workdir)
        for round_ in range(args.rounds):
            for name in ("a", "b") if round_ % 2 == 0 else ("b", "a"):
                result = wrk(
                    binary,
                    f"http://127.0.0.1:{sides[name]['port']}/",
                    per_side[name][scenario],
                    args.connections,
                    args.burst,
                    args.threads,
                    workdir,
                )
                rps[name].append(result["rps"])
        ratios = [b / a for a, b in zip(rps["a"], rps["b"], strict=True)]
        results[scenario] = (rps["a"], rps["b"], ratios)
        print(
            f"  {scenario}: a {statistics.median(rps['a']):.0f}, "
            f"b {statistics.median(rps['b']):.0f} req/s, b/a {statistics.median(ratios):.3f}",
            flush=True,
        )
    return results


if __name__ == "__main__":
    main()
