"""Throw-away PostgreSQL and Redis servers and ``eduflow`` child processes, for ops tests.

The drills stop and restart the servers they started themselves (on free ports, in
temporary directories); the shared PostgreSQL and Redis of the test run are never touched.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

EDUFLOW = [sys.executable, "-m", "eduflow.cli"]


def free_port() -> int:
    """An unused TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def children_of(pid: int) -> set[int]:
    """PIDs of the direct child processes of ``pid``."""
    out = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.add(int(stat.parent.name))
    return out


def _pg_bin(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None
    )
    assert found, f"{name} (PostgreSQL server binaries) is needed for the outage drills"
    return found


class LocalPostgres:
    """A private PostgreSQL cluster: initdb in a temp dir, start/stop on a free port."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="eduflow-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.options = ""  # more server options (``-c name=value ...``) for ``start``
        # PostgreSQL refuses to run as root: run its tools as the `postgres` account then.
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as:
            shutil.chown(self.dir, "postgres", "postgres")
        self.create()

    def create(self) -> None:
        """Make the cluster's data directory (initdb)."""
        self._run(_pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
                  "-E", "UTF8", "--no-sync")  # fmt: skip

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of its ``postgres`` database."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as, *args], check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        """Start and wait until it accepts connections."""
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
            f"-c fsync=off -c full_page_writes=off -c max_connections=60 {self.options}"
        )
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "log"),
                  "-o", options, "-w", "-t", "30", "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """Stop it (``fast``: running transactions are rolled back, clients disconnected)."""
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")

    def is_running(self) -> bool:
        """True when its postmaster runs."""
        result = subprocess.run(
            [*self._as, _pg_bin("pg_ctl"), "-D", str(self.data), "status"], capture_output=True
        )
        return result.returncode == 0

    def pids(self) -> list[int]:
        """The postmaster first, then its children (backends, checkpointer, ...)."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        return [postmaster, *sorted(children_of(postmaster))]

    def freeze(self) -> None:
        """SIGSTOP every process of the cluster: connections stay open, nothing answers
        (a stalled disk, a failover in progress, a partition)."""
        for pid in self.pids():
            os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT every process of the cluster."""
        for pid in reversed(self.pids()):
            os.kill(pid, signal.SIGCONT)

    def destroy(self) -> None:
        """Stop (if running) and delete the cluster."""
        with contextlib.suppress(Exception):
            self.thaw()
        if self.is_running():
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


class LocalRedis:
    """A private redis-server on a free port (append-only file, like a broker should)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="eduflow-redis-"))
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Its ``redis://`` URL (database 0)."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start and wait for PONG."""
        server = shutil.which("redis-server")
        assert server, "redis-server is needed for the outage drills"
        self.process = subprocess.Popen(
            [server, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        import redis

        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 10
        while True:
            try:
                if client.ping():
                    return
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        """Stop it (SIGTERM: the append-only file keeps the queued jobs)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None

    def is_running(self) -> bool:
        """True while its process runs."""
        return self.process is not None and self.process.poll() is None

    def freeze(self) -> None:
        """SIGSTOP the server: connections stay open, nothing answers."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT the server."""
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def destroy(self) -> None:
        """Stop and delete its files."""
        if self.is_running():
            self.thaw()
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def run_eduflow(env: dict[str, str], *args: str, input: str | None = None) -> str:
    """Run one ``eduflow`` command in a child process; its stdout (fails the test on error)."""
    result = subprocess.run(
        [*EDUFLOW, *args], env=env, input=input, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


class EduflowProcess:
    """A long-running ``eduflow`` command (serve, worker) in a child process."""

    def __init__(self, env: dict[str, str], log_path: Path, *args: str) -> None:
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.popen = subprocess.Popen(
            [*EDUFLOW, *args], env=env, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    @property
    def pid(self) -> int:
        """The process id."""
        return self.popen.pid

    def alive(self) -> bool:
        """True while it runs."""
        return self.popen.poll() is None

    def children(self) -> set[int]:
        """PIDs of its direct child processes (uvicorn's worker processes)."""
        return children_of(self.pid)

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, then wait (SIGKILL the group after ``timeout``); the exit status."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            return self.popen.wait()
        finally:
            self._log.close()


class ServeProcess(EduflowProcess):
    """``eduflow serve --workers N`` on a free port."""

    def __init__(self, env: dict[str, str], log_path: Path, workers: int = 2) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        super().__init__(
            env, log_path, "serve", "--port", str(self.port), "--workers", str(workers)
        )

    def wait_healthy(self, timeout: float = 60) -> None:
        """Wait until /healthz answers 200 (and every worker process is up)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.alive(), self.log_path.read_text()[-3000:]
            try:
                healthy = httpx.get(self.url + "/healthz", timeout=1).status_code == 200
                if healthy and len(self.children()) >= self.workers:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"eduflow serve did not start: {self.log_path.read_text()[-3000:]}")
