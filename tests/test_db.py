"""The connection pool: a connection is pinged only after sitting idle, and a dead one is
replaced without the caller noticing."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from sqlalchemy import text

import eduflow.db as db
from eduflow.db import get_engine, session_scope


def _backend_pid() -> int:
    with session_scope() as s:
        return int(s.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _count_pings(monkeypatch: Any) -> list[int]:
    dialect = get_engine().dialect
    real = dialect.do_ping
    calls: list[int] = []

    def counting(dbapi_conn: Any) -> bool:
        calls.append(1)
        return bool(real(dbapi_conn))

    monkeypatch.setattr(dialect, "do_ping", counting)
    return calls


def test_a_connection_used_a_moment_ago_is_not_pinged(monkeypatch: Any) -> None:
    pings = _count_pings(monkeypatch)
    first = _backend_pid()
    assert [_backend_pid() for _ in range(5)] == [first] * 5  # one pooled connection
    assert pings == []
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)
    assert _backend_pid() == first
    assert pings == [1]


def test_a_connection_killed_while_idle_in_the_pool_is_replaced(monkeypatch: Any) -> None:
    engine = get_engine()
    old = _backend_pid()
    dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", (old,)).fetchone() == (True,)
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)  # as if it had waited a while
    new = _backend_pid()  # no error: the ping found it dead, the pool opened another one
    assert new != old


def test_a_connection_killed_while_in_use_fails_fast_then_the_pool_recovers() -> None:
    engine = get_engine()
    dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with pytest.raises(db.Unavailable), session_scope() as s:
        pid = s.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        s.execute(text("SELECT 1"))
    assert _backend_pid() != pid  # the next request gets a fresh connection
