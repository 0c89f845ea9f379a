"""The ops tests once more, through a real PgBouncer in transaction pooling.

``EDUFLOW_DB_PGBOUNCER=true`` makes psycopg work through it: no server-side prepared
statements (the next transaction may run on another server connection, where they do
not exist) and the statement timeout set inside each transaction instead of per session.
The outage drills of ``test_outages`` are collected here too and run on this module's
``drill``: the same stack, with PgBouncer between EduFlow and its PostgreSQL.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import text

from eduflow.errors import Unavailable
from tests.conftest import TEST_DATABASE_URL
from tests.ops import test_multiproc_smoke
from tests.ops.conftest import drill_env
from tests.ops.pgbouncer import LocalPgBouncer
from tests.ops.stack import LocalPostgres, LocalRedis, ServeProcess, run_eduflow
from tests.ops.test_outages import (  # noqa: F401  (collected here, on this module's drill)
    test_postgresql_outage_fails_fast_with_503_and_recovers_by_itself,
    test_redis_outage_keeps_serving_from_postgresql_and_recovers,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def drill(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Own PostgreSQL + Redis, PgBouncer in front of that PostgreSQL, ``eduflow serve``
    connected through PgBouncer."""
    tmp = tmp_path_factory.mktemp("drill-pgbouncer")
    pg, redis = LocalPostgres(), LocalRedis()
    bouncer: LocalPgBouncer | None = None
    server: ServeProcess | None = None
    try:
        pg.start()
        redis.start()
        # A client waiting for a server connection while PostgreSQL is down gets an
        # error after a second (the drills expect a fast 503, not a queue).
        bouncer = LocalPgBouncer("127.0.0.1", pg.port, query_wait_timeout=1)
        bouncer.start()
        env = drill_env(pg, redis, tmp)
        env["EDUFLOW_DATABASE_URL"] = bouncer.url("postgres")
        env["EDUFLOW_DB_PGBOUNCER"] = "true"
        run_eduflow(env, "db", "upgrade")
        server = ServeProcess(env, tmp / "serve.log")
        server.wait_healthy()
        yield {"pg": pg, "redis": redis, "server": server, "env": env, "tmp": tmp}
    finally:
        if server is not None:
            server.stop()
        if bouncer is not None:
            bouncer.destroy()
        pg.destroy()
        redis.destroy()


@pytest.fixture(scope="module")
def bouncer() -> Iterator[LocalPgBouncer]:
    """PgBouncer in front of the shared test PostgreSQL (three server connections only)."""
    from sqlalchemy import make_url

    url = make_url(TEST_DATABASE_URL)
    pooler = LocalPgBouncer(url.host or "127.0.0.1", url.port or 5432, pool_size=3)
    pooler.start()
    yield pooler
    pooler.destroy()


@pytest.fixture
def through_bouncer(bouncer: LocalPgBouncer, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Point this process (and its children) at the test database through PgBouncer."""
    from sqlalchemy import make_url

    from tests.conftest import reset_process_state

    url = bouncer.url(make_url(TEST_DATABASE_URL).database or "")
    monkeypatch.setenv("EDUFLOW_DATABASE_URL", url)
    monkeypatch.setenv("EDUFLOW_DB_PGBOUNCER", "true")
    monkeypatch.setenv("EDUFLOW_DB_STATEMENT_TIMEOUT_MS", "700")
    reset_process_state()
    yield url
    monkeypatch.undo()
    reset_process_state()


def test_without_the_setting_prepared_statements_break_under_transaction_pooling(
    bouncer: LocalPgBouncer,
) -> None:
    """Why the setting exists: psycopg prepares a statement after five runs, and the next
    transaction runs on another server connection that never saw it."""
    url = bouncer.url("postgres")
    failures: list[BaseException] = []

    def run(prepare: int | None) -> None:
        try:
            with psycopg.connect(url, prepare_threshold=prepare, autocommit=True) as conn:
                for _ in range(30):
                    conn.execute("SELECT %s::int + 1", (1,)).fetchone()
        except psycopg.Error as exc:
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(0,)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures, "prepared statements unexpectedly survived transaction pooling"
    failures.clear()
    threads = [threading.Thread(target=run, args=(None,)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


def test_sessions_through_pgbouncer_share_two_server_connections(through_bouncer: str) -> None:
    from eduflow.db import get_engine, session_scope

    assert get_engine().url.port != 5432
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(20):
                with session_scope() as session:  # the same statements, many times
                    session.execute(text("SELECT count(*) FROM users WHERE id > :n"), {"n": 0})
                    assert session.execute(text("SHOW statement_timeout")).scalar() == "700ms"
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    started = time.monotonic()
    with pytest.raises(Unavailable), session_scope() as session:  # the timeout still applies
        session.execute(text("SELECT pg_sleep(5)"))
    assert time.monotonic() - started < 3


def test_multiprocess_smoke_through_pgbouncer(
    through_bouncer: str, tmp_path: Path, smtp_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """3 API processes, 2 workers and a scheduler, all through PgBouncer, pass the smoke."""
    assert os.environ["EDUFLOW_DB_PGBOUNCER"] == "true"
    test_multiproc_smoke.test_three_api_processes_two_workers_end_to_end(
        tmp_path, smtp_server, monkeypatch
    )
