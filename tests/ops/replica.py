"""A throw-away streaming replica (``pg_basebackup -R``) of a ``LocalPostgres``, for ops tests.

The shared PostgreSQL of the test run does not accept replication connections (its
``pg_hba.conf`` has no ``replication`` entry) and is never reconfigured by tests, so the
replica tests start their own primary (``LocalPostgres``: initdb's defaults allow
replication from loopback, ``wal_level = replica``) and stream from it.
"""

from __future__ import annotations

import time

import psycopg

from tests.ops.stack import LocalPostgres, _pg_bin

# Every statement goes to the server log with the client's application_name in front:
# what a test counts to prove which server answered (no shell metacharacters: pg_ctl
# starts the server through the shell).
LOG_STATEMENTS = "-c log_statement=all -c log_line_prefix=app=%a,"


class LocalReplica(LocalPostgres):
    """A hot standby of ``primary``, streaming from it on a port of its own."""

    def __init__(self, primary: LocalPostgres) -> None:
        self.primary = primary
        super().__init__()

    def create(self) -> None:
        """Copy the primary (``pg_basebackup -R``: ``standby.signal`` and its conninfo)."""
        self._run(_pg_bin("pg_basebackup"), "-h", "127.0.0.1", "-p", str(self.primary.port),
                  "-U", "postgres", "-D", str(self.data), "-R", "-X", "stream",
                  "--checkpoint=fast", "--no-sync")  # fmt: skip

    def dsn(self) -> str:
        """A libpq DSN of its ``postgres`` database (for the test's own checks)."""
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"

    def query(self, sql: str) -> object:
        """The first value ``sql`` answers on this server."""
        with psycopg.connect(self.dsn(), autocommit=True, connect_timeout=5) as conn:
            row = conn.execute(sql).fetchone()  # type: ignore[arg-type]
            return row[0] if row else None

    def wait_streaming(self, timeout: float = 30) -> None:
        """Until it is in recovery and its WAL receiver streams from the primary."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.query("SELECT pg_is_in_recovery()") and (
                    self.query("SELECT status FROM pg_stat_wal_receiver") == "streaming"
                ):
                    return
            except psycopg.OperationalError:
                pass
            assert time.monotonic() < deadline, "the replica did not start streaming"
            time.sleep(0.1)

    def wait_replayed(self, timeout: float = 30) -> None:
        """Until it has replayed every record the primary has inserted so far (its insert
        position, stepped back over a page header as ``eduflow.db_routing`` does)."""
        with psycopg.connect(
            f"host=127.0.0.1 port={self.primary.port} user=postgres dbname=postgres",
            autocommit=True,
        ) as conn:
            row = conn.execute(
                "SELECT pg_current_wal_insert_lsn() - '0/0', current_setting('wal_block_size')::int"
            ).fetchone()
        assert row is not None
        position, page = int(row[0]), int(row[1])
        target = position - (position % page if position % page <= 40 else 0)
        deadline = time.monotonic() + timeout
        sql = f"SELECT pg_last_wal_replay_lsn() - '0/0' >= {target}"
        while not self.query(sql):
            assert time.monotonic() < deadline, f"the replica did not replay up to {target}"
            time.sleep(0.05)

    def pause_replay(self) -> None:
        """Stop applying WAL (it keeps receiving it): from now on it lags."""
        self.query("SELECT pg_wal_replay_pause()")
        deadline = time.monotonic() + 10
        while self.query("SELECT pg_get_wal_replay_pause_state()") != "paused":
            assert time.monotonic() < deadline, "replay did not pause"
            time.sleep(0.05)

    def resume_replay(self) -> None:
        """Apply WAL again."""
        self.query("SELECT pg_wal_replay_resume()")

    def statements(self, application_name: str, needle: str) -> int:
        """Statements containing ``needle`` that clients named ``application_name`` ran
        here so far (from the server log; ``LOG_STATEMENTS`` must be among its options)."""
        return _count_statements(self, application_name, needle)


def _count_statements(server: LocalPostgres, application_name: str, needle: str) -> int:
    log = (server.dir / "log").read_text(errors="replace")
    prefix = f"app={application_name},LOG:  "
    # A statement's further lines follow its first one, each starting with a tab.
    entries = log.replace("\n\t", " ").splitlines()
    return sum(1 for line in entries if line.startswith(prefix) and needle in line)


def statements_on(server: LocalPostgres, application_name: str, needle: str) -> int:
    """``LocalReplica.statements`` for any ``LocalPostgres`` started with ``LOG_STATEMENTS``."""
    return _count_statements(server, application_name, needle)
