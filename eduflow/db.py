"""Engines per URL and ``session_scope()``: the only place database sessions are made."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlmodel import Session, create_engine

from eduflow.config import get_settings, reveal
from eduflow.errors import DatabaseMissing, Unavailable

_engines: dict[str, Engine] = {}
_lock = threading.Lock()
# Whether connecting may create a missing SQLite file (see ``existing_sqlite_only``).
_sqlite_may_create = [True]
AFTER_COMMIT = "eduflow_after_commit"
# A pooled connection idle for longer than this is pinged before use (see _ping_when_idle).
PING_AFTER_IDLE_SECONDS = 1.0
_IDLE_SINCE = "eduflow_idle_since"


def normalize_url(url: str) -> str:
    """Map a plain ``postgresql://`` URL (as users write it) to the psycopg 3 driver."""
    for prefix in ("postgresql://", "postgres://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _build_engine(url: str) -> Engine:
    settings = get_settings()
    sa_url = make_url(url)
    if sa_url.get_backend_name() == "sqlite":
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, pool_pre_ping=True
        )

        _refuse_missing_file(engine, sa_url.database)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    connect_args: dict[str, Any] = {
        "connect_timeout": settings.db_connect_timeout,
        # A vanished peer (network cut, host down) is noticed by the kernel: idle
        # connections by keep-alives, unacknowledged writes by tcp_user_timeout. A
        # server that runs but does not answer is bounded by eduflow.deadline.
        "keepalives": 1,
        "keepalives_idle": 5,
        "keepalives_interval": 2,
        "keepalives_count": 2,
        "tcp_user_timeout": settings.db_tcp_user_timeout_ms,
    }
    if settings.db_pgbouncer:
        # Transaction pooling hands each transaction to any server connection: nothing
        # may outlive a transaction -- no prepared statements, no session settings.
        connect_args["prepare_threshold"] = None
    else:
        connect_args["options"] = f"-c statement_timeout={settings.db_statement_timeout_ms}"
    engine = create_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=min(settings.db_connect_timeout, settings.db_request_deadline),
        pool_recycle=1800,
        connect_args=connect_args,
    )
    if settings.db_pgbouncer:
        _timeout_per_transaction(engine, settings.db_statement_timeout_ms)
    _bound_every_wait(engine)
    _ping_when_idle(engine)
    return engine


@contextmanager
def existing_sqlite_only(refuse: bool = True) -> Iterator[None]:
    """While inside, connecting to a SQLite file that does not exist raises
    ``DatabaseMissing`` instead of creating an empty file (``refuse=False``: creating is
    allowed again, for ``eduflow serve`` and ``eduflow db upgrade``). The command line
    runs every command inside; the API server and the tests create the file as before."""
    before = _sqlite_may_create[0]
    _sqlite_may_create[0] = not refuse
    try:
        yield
    finally:
        _sqlite_may_create[0] = before


def _refuse_missing_file(engine: Engine, database: str | None) -> None:
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)

    @event.listens_for(engine, "do_connect")
    def _refuse(_dialect: Any, _record: Any, _cargs: Any, _cparams: Any) -> None:
        if not _sqlite_may_create[0] and not path.exists():
            raise DatabaseMissing(
                f'database "{database}" does not exist; `eduflow db upgrade` creates it'
            )


def _bound_every_wait(engine: Engine) -> None:
    """Connect with ``eduflow.deadline.BoundedConnection``: no wait for the server is
    unbounded on the client side."""
    from eduflow.deadline import bounded_connection_class

    connection_class = bounded_connection_class()

    @event.listens_for(engine, "do_connect")
    def _connect(_dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        return connection_class.connect(*cargs, **cparams)


def _timeout_per_transaction(engine: Engine, timeout_ms: int) -> None:
    """Behind PgBouncer: ``SET LOCAL statement_timeout`` at the start of every transaction
    (a session setting would stay on a server connection other clients then get)."""

    @event.listens_for(engine, "begin")
    def _set_timeout(conn: Connection) -> None:
        conn.exec_driver_sql(f"SET LOCAL statement_timeout = {int(timeout_ms)}")


@contextmanager
def long_work(connection: Connection | Session) -> Iterator[None]:
    """Deliberate long work (a migration, the demo seed and the ``VACUUM`` after it, the
    daily report's build): no ``statement_timeout`` on PostgreSQL, and no client-side
    bound on the block's waits (``deadline.lifted``). In a transaction the timeout is
    lifted with ``SET LOCAL`` until it ends; on an autocommit connection (``VACUUM``
    cannot run in a transaction) for the block, and reset before the pooled connection
    goes back (or on to PgBouncer's next client). Requests never use it: their bounds are
    what keeps a slow database from holding every connection."""
    from eduflow.deadline import lifted

    bind = connection.get_bind() if isinstance(connection, Session) else connection
    autocommit = isinstance(connection, Connection) and (
        connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT"
    )
    if bind.dialect.name != "postgresql":
        with lifted():
            yield
        return
    connection.execute(text(f"SET {'' if autocommit else 'LOCAL '}statement_timeout = 0"))
    try:
        with lifted():
            yield
    finally:
        if autocommit:
            connection.execute(text("RESET statement_timeout"))


def _ping_when_idle(engine: Engine) -> None:
    """Ping a pooled connection before use only when it sat idle for a while.

    ``pool_pre_ping`` costs a round trip (and, with psycopg, an extra transaction) on
    every checkout: a third of the statements of a short write. A connection used a
    moment ago is alive as far as a ping could tell; one that waited in the pool (across
    a restart, an idle timeout) is pinged and replaced when dead. A connection cut while
    busy fails its statement instead: SQLAlchemy recognises the disconnect and invalidates
    the whole pool, so the next checkouts open fresh connections.
    """
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def _idle_from(_dbapi_conn: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get(_IDLE_SINCE)
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return  # fresh from connect(), or used a moment ago
        try:
            dialect.do_ping(dbapi_conn)
        except Exception as exc:  # the pool discards it and checks out another one
            raise DisconnectionError(f"stale pooled connection: {exc}") from exc


def get_engine(url: str | None = None) -> Engine:
    """The engine for ``url`` (default: the configured database), made once per process."""
    url = normalize_url(url or get_settings().database_url.get_secret_value())
    engine = _engines.get(url)
    if engine is None:
        with _lock:
            engine = _engines.get(url)
            if engine is None:
                engine = _engines[url] = _build_engine(url)
                from eduflow.tracing import instrument_engine

                instrument_engine(engine)  # spans per statement, when tracing is on
    return engine


def get_read_engine() -> Engine:
    """The engine for lag-tolerant reads: the replica when configured, else the primary
    (``eduflow.db_routing`` decides which reads may use it)."""
    replica = reveal(get_settings().read_database_url)
    return get_engine(replica) if replica else get_engine()


def dispose_engines() -> None:
    """Close every pool (tests, forks and shutdown)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
        _autocommit_engines.clear()


def on_commit(session: Session, callback: Callable[[], None]) -> None:
    """Run ``callback`` after the transaction commits (never before, never on rollback)."""
    session.info.setdefault(AFTER_COMMIT, []).append(callback)


def _run_after_commit(session: Session) -> None:
    run_after_commit(session.info.pop(AFTER_COMMIT, []))


def run_after_commit(callbacks: Iterable[Callable[[], None]]) -> None:
    """Run the hooks of a committed unit of work: a failing one is logged, never raised."""
    from eduflow.logging import get_logger

    for callback in callbacks:
        try:
            callback()
        except Exception:  # an after-commit hook must never undo a committed request
            get_logger("eduflow.db").exception("after_commit_failed", callback=repr(callback))


_autocommit_engines: dict[Engine, Engine] = {}
_probe_lock = threading.Lock()
_probe: Future[bool] | None = None
PROBE_BOUND_SECONDS = 3.0  # a probe still waiting then has its connection closed


def start_probe() -> Future[bool]:
    """A ``SELECT 1`` in a thread of its own, answered True/False; at most one in flight
    per process, so probes of a server that does not answer never pile up."""
    global _probe
    with _probe_lock:
        probe = _probe
        if probe is None or probe.done():
            probe = _probe = Future()
            threading.Thread(
                target=_run_probe, args=(probe,), name="eduflow-db-probe", daemon=True
            ).start()
    return probe


def _run_probe(probe: Future[bool]) -> None:
    from sqlalchemy import text

    from eduflow.deadline import within

    try:
        with within(PROBE_BOUND_SECONDS), get_engine().connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception:
        probe.set_result(False)
    else:
        probe.set_result(True)


def answered(probe: Future[bool], within_seconds: float) -> bool:
    """True when ``probe`` says the database answered, within ``within_seconds``."""
    try:
        return probe.result(timeout=max(0.0, within_seconds))
    except FutureTimeout:
        return False


@contextmanager
def autocommit_connection() -> Iterator[Connection]:
    """A pooled connection on which each statement commits by itself, inside the server.

    No BEGIN/COMMIT round trips, and a lock a statement takes is released when that
    statement ends. Only for a unit of work done in one statement that is consistent
    whatever it finds: what follows its commit follows the statement. Connection failures
    become ``Unavailable`` (503), as in ``session_scope``.
    """
    engine = get_engine()
    autocommit = _autocommit_engines.get(engine)
    if autocommit is None:  # same pool, isolation level set per checkout (no round trip)
        autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        _autocommit_engines[engine] = autocommit
    try:
        with autocommit.connect() as connection:
            yield connection
    except (DBAPIError, PoolTimeout) as exc:
        _raise_unavailable(exc)
        raise


@contextmanager
def session_scope(*, read_only: bool = False, replica: bool = False) -> Iterator[Session]:
    """One unit of work: commit on success (then run after-commit hooks), roll back on error.

    ``read_only`` rolls back instead of committing (on the primary: it sees every
    committed write, e.g. a login or a logout). ``replica`` (implies read-only) reads
    from ``EDUFLOW_READ_DATABASE_URL`` when set, as it is: reads go there through
    ``eduflow.db_routing.read``, which checks how far the replica has replayed and falls
    back to the primary. Database connection failures become ``Unavailable`` (503) so
    callers fail fast.
    """
    read_only = read_only or replica
    engine = get_read_engine() if replica else get_engine()
    session = Session(engine, expire_on_commit=False)
    try:
        yield session
        if read_only:
            session.rollback()
        else:
            session.commit()
    except (DBAPIError, PoolTimeout) as exc:
        session.rollback()
        session.info.pop(AFTER_COMMIT, None)
        _raise_unavailable(exc)
        raise
    except BaseException:
        session.rollback()
        session.info.pop(AFTER_COMMIT, None)
        raise
    else:
        _run_after_commit(session)
    finally:
        session.close()


def _raise_unavailable(exc: DBAPIError | PoolTimeout) -> None:
    """Raise the 503 a lost database or an exhausted pool (every pooled connection busy
    for ``db_connect_timeout`` seconds) becomes; return for any other failure."""
    if isinstance(exc, PoolTimeout):
        raise Unavailable("The database is overloaded; retry shortly") from exc
    if _is_connection_error(exc):
        raise Unavailable("The database is unavailable; retry shortly") from exc


def _is_connection_error(exc: DBAPIError) -> bool:
    if exc.connection_invalidated:
        return True
    if isinstance(exc, OperationalError):
        text = str(exc.orig).lower()
        markers = (
            "connection",
            "connect",
            "server closed",
            "terminating",
            "timeout",
            "timed out",
            "unable to open database",  # SQLite: a missing directory or an unreadable file
        )
        return any(m in text for m in markers) and "database is locked" not in text
    return False


# serialization failure, deadlock detected, lock not available: the database aborted one
# side of a race; the same request succeeds when retried.
_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "55P03"})


def is_transient_conflict(exc: BaseException) -> bool:
    """True when ``exc`` is a race the database resolved by aborting us (503 + Retry-After)."""
    if not isinstance(exc, DBAPIError):
        return False
    if getattr(exc.orig, "sqlstate", None) in _TRANSIENT_SQLSTATES:
        return True
    return "database is locked" in str(exc.orig).lower()  # SQLite, after busy_timeout


def is_connection_error(exc: BaseException) -> bool:
    """True when ``exc`` means the database cannot be reached (503, not 500)."""
    if isinstance(exc, PoolTimeout):
        return True
    return isinstance(exc, DBAPIError) and _is_connection_error(exc)
