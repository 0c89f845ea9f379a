#!/usr/bin/env python3
"""Run EduFlow's production shape on one machine, without Docker.

Starts, on the PostgreSQL and Redis named by EDUFLOW_DATABASE_URL / EDUFLOW_REDIS_URL:

* ``eduflow db upgrade`` (once, before anything else),
* ``eduflow serve --workers N`` (N API processes sharing one port; default 3),
* M ``eduflow worker`` processes (default 2) and one ``eduflow scheduler``,

waits until ``/readyz`` answers 200, prints one ``READY`` line, and stays in the
foreground. Ctrl-C or SIGTERM stops everything gracefully (in-flight requests and
running jobs finish); if any process dies, the others are stopped and the exit status
is 1. Each process's output goes to ``<log-dir>/<name>.log``.

    EDUFLOW_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/eduflow \\
    EDUFLOW_REDIS_URL=redis://127.0.0.1:6379/0 \\
    .venv/bin/python scripts/multiproc.py --port 8000 --log-dir /tmp/eduflow-logs
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

EDUFLOW = [sys.executable, "-m", "eduflow.cli"]


class Process:
    """One supervised child process with its log file."""

    def __init__(self, name: str, args: list[str], log_dir: Path, env: dict[str, str]) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log: IO[bytes] = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            [*EDUFLOW, *args],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # Ctrl-C in the terminal reaches us, not them directly
        )

    def alive(self) -> bool:
        """True while the process runs."""
        return self.popen.poll() is None

    def terminate(self) -> None:
        """Ask for a graceful stop (SIGTERM)."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> int | None:
        """The exit status, killing the whole process group after ``timeout`` seconds."""
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            return self.popen.wait()
        finally:
            self._log.close()


def run_once(args: list[str], env: dict[str, str]) -> None:
    """Run a one-shot ``eduflow`` command; exit with its message when it fails."""
    result = subprocess.run([*EDUFLOW, *args], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"`eduflow {' '.join(args)}` failed: {result.stderr.strip()}")


def wait_ready(url: str, processes: list[Process], timeout: float) -> None:
    """Poll ``url`` until it answers 200; fail early when a process dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in processes:
            if not process.alive():
                raise RuntimeError(f"{process.name} exited early; see {process.log_path}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer 200 within {timeout:.0f} s")


def main(argv: list[str] | None = None) -> int:
    """Start everything, supervise, stop everything."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--api-processes", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--log-dir", type=Path, default=Path("multiproc-logs"))
    parser.add_argument("--ready-timeout", type=float, default=90)
    parser.add_argument("--stop-timeout", type=float, default=40)
    opts = parser.parse_args(argv)

    env = dict(os.environ)
    if not env.get("EDUFLOW_DATABASE_URL", "").startswith(("postgresql", "postgres:")):
        sys.exit("set EDUFLOW_DATABASE_URL to a PostgreSQL database")
    if not env.get("EDUFLOW_REDIS_URL"):
        sys.exit("set EDUFLOW_REDIS_URL: several processes share state through Redis")
    opts.log_dir.mkdir(parents=True, exist_ok=True)

    stopping = False

    def request_stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    run_once(["db", "upgrade"], env)
    processes = [
        Process(
            "api",
            [
                "serve",
                "--host",
                opts.host,
                "--port",
                str(opts.port),
                "--workers",
                str(opts.api_processes),
            ],
            opts.log_dir,
            env,
        ),
        *(
            Process(f"worker-{i}", ["worker"], opts.log_dir, env)
            for i in range(1, opts.workers + 1)
        ),
        Process("scheduler", ["scheduler"], opts.log_dir, env),
    ]
    status = 0
    try:
        wait_ready(f"http://{opts.host}:{opts.port}/readyz", processes, opts.ready_timeout)
        pids = " ".join(f"{p.name}={p.popen.pid}" for p in processes)
        print(f"READY http://{opts.host}:{opts.port} {pids} logs={opts.log_dir}", flush=True)
        while not stopping:
            dead = [p for p in processes if not p.alive()]
            if dead:
                print(f"{dead[0].name} exited with {dead[0].popen.returncode}", file=sys.stderr)
                status = 1
                break
            time.sleep(0.5)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        status = 1
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            code = process.wait(opts.stop_timeout)
            if code not in (0, -signal.SIGTERM):
                print(f"{process.name} stopped with status {code}", file=sys.stderr)
                status = status or 1
    print("STOPPED", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
