"""A throw-away PgBouncer (Debian's ``pgbouncer``) in transaction pooling, for ops tests."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

from tests.ops.stack import free_port


class LocalPgBouncer:
    """PgBouncer on a free loopback port in front of one PostgreSQL server, pooling by
    transaction with a small server pool (so clients really share server connections)."""

    def __init__(
        self, host: str, port: int, pool_size: int = 4, query_wait_timeout: int = 120
    ) -> None:
        binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
        assert os.path.exists(binary), "pgbouncer (Debian package) is needed for this test"
        self.binary = binary
        self.dir = Path(tempfile.mkdtemp(prefix="eduflow-pgbouncer-"))
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        (self.dir / "userlist.txt").write_text('"postgres" ""\n')
        (self.dir / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"* = host={host} port={port}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {self.dir / 'userlist.txt'}\n"
            f"pool_mode = transaction\ndefault_pool_size = {pool_size}\n"
            "max_client_conn = 500\nserver_connect_timeout = 2\nserver_login_retry = 1\n"
            f"query_wait_timeout = {query_wait_timeout}\n"
            f"logfile = {self.dir / 'pgbouncer.log'}\n"
        )
        # PgBouncer refuses to run as root: it drops to the `postgres` account then.
        self._user = ["-u", "postgres"] if os.geteuid() == 0 else []
        if self._user:
            shutil.chown(self.dir, "postgres", "postgres")
            for path in self.dir.iterdir():
                shutil.chown(path, "postgres", "postgres")

    def url(self, database: str) -> str:
        """A URL of ``database`` through the pooler."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        """Start and wait until it answers a query."""
        self.process = subprocess.Popen(
            [self.binary, *self._user, str(self.dir / "pgbouncer.ini")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while True:
            try:
                with psycopg.connect(self.url("postgres"), connect_timeout=1) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise AssertionError(self.log()) from None
                time.sleep(0.1)

    def log(self) -> str:
        """Its log, for failure messages."""
        path = self.dir / "pgbouncer.log"
        return path.read_text()[-3000:] if path.exists() else "(no log)"

    def destroy(self) -> None:
        """Stop it and delete its files."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # safe shutdown
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
