"""Where a lag-tolerant read goes: the read replica once it has replayed every write the
read must see, else the primary. The one place that decides it.

The rule (``docs/operations.md``, "Read replica"):

- Only the catalogue's cached reads come here (``read``): course lists, course detail and
  lesson lists, as filled into the response cache or built for one caller. Writes, logins,
  token and permission checks, idempotency keys and every other read use the primary
  (``session_scope()``).
- Every catalogue write (``cache.catalog`` replaces the generation tokens after its commit)
  asks for the primary's WAL position then (``write_position``): it goes into the new
  tokens, so the entries built under them know which writes they must include, and is
  kept for the request's caller (``act_as``) for ``EDUFLOW_READ_YOUR_WRITES_SECONDS``.
- A read must reflect the position named by the tokens of the entry it fills and the
  reader's own latest write. The replica serves it only when its
  ``pg_last_wal_replay_lsn()`` has reached that position (waiting ``WAIT_FOR_REPLAY`` at
  most); otherwise the primary does. So
  writers always see their own writes, and no entry is filled with what a lagging replica
  still holds from before the write that invalidated the previous one. Anonymous callers
  reading past the cache (no cache, uncacheable URL) may see data as old as the lag.
- A replica that fails is skipped for ``RETRY_AFTER`` seconds, its reads served by the
  primary: one warning per outage, ``eduflow_replica_reads_total{outcome="down"}``. A
  public read never fails because the replica does.

Without ``EDUFLOW_READ_DATABASE_URL`` (or on SQLite) nothing here asks anything: reads use
the primary.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from contextvars import ContextVar
from typing import TypeVar

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from eduflow.config import get_settings, reveal
from eduflow.db import autocommit_connection, normalize_url, session_scope
from eduflow.errors import Unavailable

T = TypeVar("T")
RETRY_AFTER = 5.0  # seconds a failed replica is left alone before it is tried again
STORE_RETRY_AFTER = 1.0  # seconds writers' positions are not asked of a store that failed
# A replica a moment behind (streaming takes a millisecond or two after a commit) is
# waited for this long, then the primary answers.
WAIT_FOR_REPLAY = 0.02
POLL_REPLAY = 0.002
UNKNOWN = 2**63  # a position no replica reaches: "what this reader wrote is not known"
_WRITERS_KEPT = 10_000  # writers remembered per process (when the shared store is down)

_POSITION = "SELECT pg_current_wal_insert_lsn() - '0/0', current_setting('wal_block_size')::int"
_LONG_PAGE_HEADER = 40  # bytes: SizeOfXLogLongPHD (a segment's first page; others have 24)

_caller: ContextVar[int | None] = ContextVar("eduflow_db_caller", default=None)


def act_as(user_id: int | None) -> None:
    """Name the caller of the current request: the writes it makes are kept for it."""
    _caller.set(user_id)


class _Replica:
    """What this process knows of the replica: its URL, how far it has replayed, whether
    it is down."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._settings: object = None
        self.url: str | None = None
        self.replayed = 0  # the newest replay position seen (replay only moves forward)
        self.down_until = 0.0
        self.down_since: float | None = None  # the outage being reported, if any
        self.store_down_until = 0.0
        self.writers: dict[int, tuple[int, float]] = {}  # user id -> (position, expires)

    def configured(self) -> str | None:
        """The replica's URL when reads may use one: set, and PostgreSQL on both sides."""
        settings = get_settings()
        if settings is not self._settings:
            url = reveal(settings.read_database_url)
            primary = normalize_url(settings.database_url.get_secret_value())
            postgres = url and all(
                make_url(normalize_url(u)).get_backend_name() == "postgresql"
                for u in (url, primary)
            )
            with self._lock:
                new = url if postgres else None
                if new != self.url:
                    self.replayed, self.down_until, self.down_since = 0, 0.0, None
                self.url, self._settings = new, settings
        return self.url

    def failed(self, exc: BaseException) -> None:
        """Leave the replica alone for ``RETRY_AFTER`` seconds; warn once per outage."""
        with self._lock:
            first = self.down_since is None
            if first:
                self.down_since = time.monotonic()
            self.down_until = time.monotonic() + RETRY_AFTER
            self.replayed = 0
        if first:
            from eduflow.logging import get_logger

            cause = exc.__cause__ or exc  # the driver's error behind ``Unavailable``
            get_logger("eduflow.db").warning(
                "replica_unavailable",
                error=f"{type(cause).__name__}: {cause}"[:200],
                retry_after_seconds=RETRY_AFTER,
            )

    def answered(self) -> None:
        """A read the replica served: the end of an outage, if one was reported."""
        with self._lock:
            down_since, self.down_since = self.down_since, None
        if down_since is not None:
            from eduflow.logging import get_logger

            get_logger("eduflow.db").warning(
                "replica_recovered", down_seconds=round(time.monotonic() - down_since, 2)
            )

    def reset(self) -> None:
        """Forget everything (tests)."""
        with self._lock:
            self._settings, self.url, self.replayed, self.down_until = None, None, 0, 0.0
            self.down_since, self.store_down_until = None, 0.0
            self.writers.clear()


replica = _Replica()


def configured() -> bool:
    """True when lag-tolerant reads may go to a replica."""
    return replica.configured() is not None


def current_position() -> int | None:
    """The primary's WAL insert position now (past every commit made so far); None
    without a replica, or when the primary does not answer."""
    if replica.configured() is None:
        return None
    try:
        with autocommit_connection() as connection:
            position, page = connection.execute(text(_POSITION)).one()
    except (Unavailable, DBAPIError):
        return None
    # Right after a page header the insert position is past the end of the last record
    # (what a replica reports having replayed): step back over the header. Any position
    # in (page start, page start + header] has the same records up to it.
    offset = int(position) % int(page)
    return int(position) - (offset if offset <= _LONG_PAGE_HEADER else 0)


def write_position() -> int | None:
    """After a committed catalogue write: ``current_position()``, kept for the caller of
    the request (``act_as``) so that its next reads see the write."""
    position = current_position()
    writer = _caller.get()
    if position is not None and writer is not None:
        _remember(writer, position)
    return position


def _writer_key(user_id: int) -> str:
    from eduflow.cache.stores import key

    return key("wrote", user_id)


def _remember(user_id: int, position: int) -> None:
    from eduflow.cache.stores import StoreUnavailable, get_store

    window = get_settings().read_your_writes_seconds
    with replica._lock:
        if len(replica.writers) >= _WRITERS_KEPT:
            replica.writers.clear()
        replica.writers[user_id] = (position, time.monotonic() + window)
    # When the store is down it stays kept in this process; the others, unable to read it,
    # send this writer to the primary.
    if time.monotonic() >= replica.store_down_until:
        try:
            get_store().set(_writer_key(user_id), str(position).encode(), window)
        except StoreUnavailable:
            replica.store_down_until = time.monotonic() + STORE_RETRY_AFTER


def _written_by(user_id: int | None) -> int:
    """The position of ``user_id``'s latest catalogue write still in the window (0: none;
    ``UNKNOWN`` when the shared store cannot say)."""
    if user_id is None:
        return 0
    from eduflow.cache.stores import StoreUnavailable, get_store

    position, expires = replica.writers.get(user_id, (0, 0.0))
    if expires <= time.monotonic():
        position = 0
    if time.monotonic() < replica.store_down_until:
        return UNKNOWN  # not asked again for a moment: no wait on every read
    try:
        shared = get_store().get(_writer_key(user_id))
    except StoreUnavailable:
        replica.store_down_until = time.monotonic() + STORE_RETRY_AFTER
        return UNKNOWN
    return max(position, int(shared) if shared and shared.isdigit() else 0)


def _replayed_at_least(session: Session, position: int) -> bool:
    """True when the replica behind ``session`` has replayed ``position``, within
    ``WAIT_FOR_REPLAY`` (a server that is not in recovery is a primary: it has all it has)."""
    deadline = time.monotonic() + WAIT_FOR_REPLAY
    while position > replica.replayed:
        found = session.execute(text("SELECT pg_last_wal_replay_lsn() - '0/0'")).scalar()
        replayed = UNKNOWN if found is None else int(found)
        with replica._lock:
            replica.replayed = max(replica.replayed, replayed)
        if replayed >= position:
            break
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_REPLAY)
    return True


def _count(outcome: str) -> None:
    from eduflow.metrics import REPLICA_READS

    REPLICA_READS.labels(outcome).inc()


def read(fn: Callable[[Session], T], *, reader: int | None = None, since: int | None = None) -> T:
    """``fn(session)`` (read-only) on the replica when it has replayed ``since`` (the
    position the data must include, e.g. an entry's generation tokens) and ``reader``'s
    latest write; else, and whenever the replica fails, on the primary."""
    if replica.configured() is None or time.monotonic() < replica.down_until:
        with session_scope(read_only=True) as session:
            return fn(session)
    needed = max(since or 0, _written_by(reader))
    try:
        if needed < UNKNOWN:
            with _bounded(), session_scope(replica=True) as session:
                if _replayed_at_least(session, needed):
                    result = fn(session)
                    _count("replica")
                    if replica.down_since is not None:
                        replica.answered()
                    return result
        _count("behind")
    except (Unavailable, DBAPIError) as exc:
        replica.failed(exc)
        _count("down")
    with session_scope(read_only=True) as session:
        return fn(session)


def _bounded() -> AbstractContextManager[None]:
    """The replica gets half of what is left of the request's deadline: a replica that
    does not answer leaves the primary the other half."""
    from eduflow.deadline import remaining, within

    left = remaining()
    return nullcontext() if left is None else within(max(left, 0.0) / 2)
