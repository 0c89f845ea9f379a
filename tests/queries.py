"""Watching the SQL an operation runs: query counts, no-database-work assertions, lock waits."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event


@contextmanager
def counted_queries() -> Iterator[list[str]]:
    """Every SQL statement the application's engine runs inside the block."""
    from eduflow.db import get_engine

    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    engine = get_engine()
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def wait_until_a_lock_is_awaited(timeout: float = 10.0) -> None:
    """Return once some backend of the test database waits for a lock (a competing write
    has reached the row another transaction holds); fail after ``timeout`` seconds."""
    import time

    from sqlalchemy import text

    from eduflow.db import get_engine

    deadline = time.monotonic() + timeout
    with get_engine().connect() as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            ).scalar()
            conn.rollback()
            if waiting:
                return
            time.sleep(0.02)
    raise AssertionError("the competing write never waited for a lock")
