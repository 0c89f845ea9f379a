"""Client-side bounds on every wait for PostgreSQL: the request deadline and the call bound.

``statement_timeout`` runs inside the server, so it cannot fire when the server does not
run at all (processes stopped, a stalled disk, a failover in progress, a network partition
whose TCP connections stay open). The client must bound its own waits:

- a request sets a **deadline** (``EDUFLOW_DB_REQUEST_DEADLINE`` seconds from its start);
  every wait for the database within it ends at that deadline at the latest;
- outside requests (jobs, the CLI) each wait is bounded by the statement timeout plus a
  grace second;
- deliberate long work (migrations, the demo seed, a daily report's build) lifts both
  bounds for itself (``eduflow.db.long_work``: ``lifted`` here and ``SET LOCAL
  statement_timeout = 0``);
- a wait that runs out closes its connection (its state is unknown: a statement may be
  half-way), so the pool throws it away, and raises ``ConnectionTimeout``, which
  ``eduflow.db`` turns into a 503 like any lost connection.

Every wait of a psycopg connection (execute, fetch, commit, rollback) goes through
``Connection.wait``; the connection class below bounds it. Connecting is bounded by
``connect_timeout`` and waiting for a pooled connection by the pool timeout.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from typing import Any

# Monotonic time after which this request's waits for the database give up (None: no request).
_deadline: ContextVar[float | None] = ContextVar("eduflow_db_deadline", default=None)
GRACE_SECONDS = 1.0


def start_request_deadline(seconds: float | None = None) -> Any:
    """Start the deadline of a request (its DB waits end by then); returns a reset token."""
    if seconds is None:
        from eduflow.config import get_settings

        seconds = get_settings().db_request_deadline
    return _deadline.set(time.monotonic() + seconds)


def end_request_deadline(token: Any) -> None:
    """Forget the deadline set with ``token``."""
    _deadline.reset(token)


@contextmanager
def within(seconds: float) -> Iterator[None]:
    """Bound the database waits of a block to ``seconds`` from now (or the current deadline,
    when that comes first)."""
    current = _deadline.get()
    end = time.monotonic() + seconds
    token = _deadline.set(end if current is None else min(current, end))
    try:
        yield
    finally:
        _deadline.reset(token)


@contextmanager
def lifted() -> Iterator[None]:
    """No client-side bound on the database waits of a block: an operator's deliberate long
    work (a migration, the demo seed), whose transaction lifts ``statement_timeout`` too.
    Its single statements (an index build, a ``COPY`` of millions of rows) run for minutes
    on a large database; Ctrl-C still ends them."""
    token = _deadline.set(math.inf)
    try:
        yield
    finally:
        _deadline.reset(token)


def current() -> float | None:
    """The current deadline (monotonic time), None without one: work done for a request
    elsewhere (``eduflow.api.progress_groups``) takes it along."""
    return _deadline.get()


@contextmanager
def until(deadline: float | None) -> Iterator[None]:
    """Run a block under ``deadline`` (from ``current``; None: the call bound alone)."""
    token = _deadline.set(deadline)
    try:
        yield
    finally:
        _deadline.reset(token)


def remaining() -> float | None:
    """Seconds left before the current deadline (negative once passed); None without one."""
    deadline = _deadline.get()
    return None if deadline is None else deadline - time.monotonic()


def _bound_of_a_call() -> float | None:
    from eduflow.config import get_settings

    ms = get_settings().db_statement_timeout_ms
    return ms / 1000 + GRACE_SECONDS if ms > 0 else None


@cache
def bounded_connection_class() -> type[Any]:
    """The psycopg connection class whose every wait ends by the deadline, or the call bound
    (made on first use: the embedded default never imports psycopg)."""
    import psycopg
    from psycopg import errors
    from psycopg.connection import _WAIT_INTERVAL

    class BoundedConnection(psycopg.Connection[Any]):
        """A psycopg connection whose every wait ends by the deadline, or the call bound."""

        def wait(
            self, gen: Any, interval: float = _WAIT_INTERVAL, timeout: float | None = None
        ) -> Any:
            """``Connection.wait`` with the client-side bound; a wait that runs out closes the
            connection (the pool then discards it) and raises ``ConnectionTimeout``."""
            left = remaining()
            bound = _bound_of_a_call() if left is None else left
            if bound is None or math.isinf(bound):
                return super().wait(gen, interval, timeout)
            if timeout is not None:
                bound = min(bound, timeout)
            try:
                if bound <= 0:
                    raise errors._WaitTimeout
                return super().wait(gen, interval, bound)
            except errors._WaitTimeout:
                if timeout is not None and bound >= timeout:
                    raise  # psycopg's own timeout (e.g. a cancellation), not ours
                self.pgconn.finish()  # unknown state: never reuse it
                raise errors.ConnectionTimeout(
                    "the database did not answer in time (client-side deadline)"
                ) from None

    return BoundedConnection
