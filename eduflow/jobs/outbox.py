"""The outbox: record a job in the caller's transaction; relay rows to the queue after commit.

A row becomes the RQ job ``outbox-<row id>`` (enqueued with ``unique=True``), so a row
relayed twice (after-commit hook and sweep racing, or a crash between enqueue and marking)
is still one job while RQ keeps the job's key. Exactly-once side effects do not rest on
that: every task checks its own durable marker in the database.

The after-commit relay runs in the request path, so it costs one Redis round trip: rows
handed to RQ are marked ``relayed_at`` a moment later, in batches, by a thread of the
process (one UPDATE for many requests). A row whose mark is lost (process killed, database
down) is offered again by the sweep, finds its job already there (or runs an idempotent
task again), and is marked then: relayed at least once, processed once.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache
from typing import TYPE_CHECKING, Any, Protocol

from sqlmodel import Session

from eduflow.models.outbox import OutboxJob

if TYPE_CHECKING:
    import redis

# job name -> dotted path of the task function (imported by the worker, not by the API).
TASKS: dict[str, str] = {
    "send_enrollment_email": "eduflow.jobs.tasks.send_enrollment_email",
    "expire_abandoned_enrollments": "eduflow.jobs.tasks.expire_abandoned_enrollments",
    "daily_report": "eduflow.jobs.tasks.daily_report",
    "course_completed": "eduflow.jobs.completion.course_completed",
    "send_password_reset": "eduflow.jobs.account_emails.send_password_reset",
    "send_email_verification": "eduflow.jobs.account_emails.send_email_verification",
}
_PENDING_IDS = "eduflow_outbox_pending"


def _start_job_series() -> None:
    """Every job's ``eduflow_jobs_enqueued_total`` series exists (at 0) from the start."""
    from eduflow.metrics import JOBS_ENQUEUED

    for job in TASKS:
        JOBS_ENQUEUED.labels(job)


_start_job_series()
_BREAKER_SECONDS = 5.0
_breaker_until = 0.0
_MARK_DELAY = 0.5  # seconds the marking thread gathers ids before one UPDATE
_marks: list[int] = []  # relayed ids not yet marked in the database
_marks_lock = threading.Lock()
_marks_ready = threading.Event()
_flush_lock = threading.Lock()  # one flush at a time: a reader waits for the one in flight
_marker_pid = 0  # the process whose marking thread runs
wake_embedded = threading.Event()  # set after a commit that recorded jobs (embedded runner)


def record_job(session: Session, job_name: str, queue: str = "default", **args: Any) -> OutboxJob:
    """Record ``job_name(**args)`` in the same transaction as the change that causes it."""
    from eduflow.logging import current_request_id

    job = OutboxJob(job_name=job_name, args=args, queue=queue, request_id=current_request_id())
    return record_row(session, job)


def record_row(session: Session, job: OutboxJob) -> OutboxJob:
    """``record_job`` for a row built by the caller (e.g. dated like the change it follows)."""
    # One Core INSERT on the session's connection (same transaction): the unit-of-work
    # flush of an ORM add costs several times more CPU on a hot write path. The returned
    # row is not attached to the session.
    job.id = (
        session.connection()
        .execute(
            _insert_job(),
            {
                "job_name": job.job_name,
                "args": job.args,
                "queue": job.queue,
                "request_id": job.request_id,
                "trace_context": job.trace_context,
                "created_at": job.created_at,
                "attempts": job.attempts,
            },
        )
        .scalar_one()
    )
    relay_on_commit(session, job)
    return job


def relay_on_commit(session: Session, job: OutboxJob) -> None:
    """Hand ``job`` (a row this transaction inserted, id set) to the queue after the commit."""
    pending: list[OutboxJob] | None = session.info.get(_PENDING_IDS)
    if pending is None:
        pending = session.info[_PENDING_IDS] = []
        from eduflow.db import on_commit

        on_commit(session, lambda: relay_after_commit(session.info.pop(_PENDING_IDS, [])))
    pending.append(job)


@cache
def _insert_job() -> Any:
    from sqlalchemy import insert

    table: Any = OutboxJob.__table__  # type: ignore[attr-defined]
    return insert(table).returning(table.c.id)


def job_id_for(outbox_id: int) -> str:
    """The RQ job id of an outbox row: one row, one job."""
    return f"outbox-{outbox_id}"


@dataclass
class RelayResult:
    """What one relay pass did."""

    relayed: int = 0
    duplicates: int = 0
    pruned: int = 0
    errors: list[str] = field(default_factory=list)


class JobRow(Protocol):
    """What relaying needs of an outbox row."""

    @property
    def id(self) -> int | None: ...
    @property
    def job_name(self) -> str: ...
    @property
    def args(self) -> dict[str, Any]: ...
    @property
    def queue(self) -> str: ...
    @property
    def request_id(self) -> str | None: ...
    @property
    def trace_context(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class InsertedJob:
    """An outbox row a service inserted within a larger statement: what relaying needs,
    without building an ORM object on the hot path."""

    id: int
    job_name: str
    args: dict[str, Any]
    queue: str
    request_id: str | None
    trace_context: str | None = None


def relay_after_commit(rows: Sequence[JobRow]) -> None:
    """Best effort, right after the commit: hand fresh rows to RQ; never fails the caller.

    Without Redis the embedded runner is woken instead. When Redis does not answer, rows
    stay in the outbox for the periodic sweep, and further attempts are skipped for a few
    seconds so a broker outage costs requests nothing.
    """
    # Even a failing log handler must not fail the request.
    with contextlib.suppress(Exception):
        _relay_now(rows)


_clients: dict[tuple[int, str], Any] = {}  # (pid, Redis URL) -> client of the relay


def _relay_client() -> redis.Redis | None:
    """The process's Redis client for the after-commit relay, made once.

    ``get_redis()`` builds a new client (and connection pool) per call: in the request
    path that was a TCP connect, ``SELECT`` and RQ's ``INFO server`` probe per enrollment.
    """
    from eduflow.cache.stores import get_redis
    from eduflow.config import get_settings, reveal

    url = reveal(get_settings().redis_url)
    if not url:
        return None
    slot = (os.getpid(), url)
    client = _clients.get(slot)
    if client is None:
        _clients.clear()  # another URL (tests) or a forked child: drop the old clients
        client = _clients[slot] = get_redis()
    return client  # type: ignore[no-any-return]


def _relay_now(rows: Sequence[JobRow]) -> None:
    global _breaker_until
    from eduflow.logging import get_logger

    if not rows:
        return
    client = _relay_client()
    if client is None:
        wake_embedded.set()
        return
    if time.monotonic() < _breaker_until:
        return
    done: list[int] = []
    failure: str | None = None
    try:
        for row in rows:
            assert row.id is not None
            enqueue_row(client, row)
            done.append(row.id)
    except Exception as exc:  # a broker problem must never become the request's problem
        _breaker_until = time.monotonic() + _BREAKER_SECONDS
        failure = f"{type(exc).__name__}: {exc}"
    if done:
        _queue_marks(done)
    if failure:
        get_logger("eduflow.jobs.outbox").warning(
            "outbox_relay_deferred", error=failure, pending=len(rows) - len(done)
        )


def enqueue_row(client: redis.Redis, row: JobRow) -> bool:
    """Enqueue one outbox row as its RQ job; False when that job already exists."""
    from rq import Queue, Retry
    from rq.exceptions import DuplicateJobError

    from eduflow.config import get_settings

    settings = get_settings()
    assert row.id is not None
    path = TASKS.get(row.job_name)
    if path is None:
        raise ValueError(f"unknown job {row.job_name!r} in outbox row {row.id}")
    intervals = settings.job_retry_intervals
    queue = _queues.get((client, row.queue))
    if queue is None:
        if len(_queues) > 32:
            _queues.clear()
        queue = _queues[(client, row.queue)] = Queue(row.queue, connection=client)
    # RQ adds the queue to its registry of queues (a round trip of its own) on every
    # enqueue; that registration is sent at most every _REGISTER_EVERY seconds per queue.
    registration = client.pipeline(transaction=False)
    try:
        queue.enqueue_call(
            path,
            kwargs=dict(row.args),
            job_id=job_id_for(row.id),
            unique=True,
            timeout=settings.job_timeout,
            retry=Retry(max=len(intervals), interval=intervals) if intervals else None,
            meta={
                "request_id": row.request_id,
                "trace_context": row.trace_context,
                "outbox_id": row.id,
                "job_name": row.job_name,
                "max_retries": len(intervals),
            },
            description=f"{row.job_name}({_describe(row.args)})",
            pipeline=registration,
        )
    except DuplicateJobError:
        return False
    finally:
        _register_queue(queue, registration)
    from eduflow.metrics import JOBS_ENQUEUED

    JOBS_ENQUEUED.labels(row.job_name).inc()
    return True


_queues: dict[tuple[object, str], Any] = {}  # (client, queue name) -> rq Queue
_registered: dict[tuple[object, str], float] = {}  # (client, queue name) -> monotonic time
_REGISTER_EVERY = 10.0


def _register_queue(queue: Any, registration: Any) -> None:
    slot = (queue.connection, queue.name)
    now = time.monotonic()
    if now - _registered.get(slot, -_REGISTER_EVERY) < _REGISTER_EVERY:
        return
    registration.execute()
    if len(_registered) > 32:
        _registered.clear()
    _registered[slot] = now


def _describe(args: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in args.items())


def _queue_marks(ids: list[int]) -> None:
    global _marker_pid
    with _marks_lock:
        _marks.extend(ids)
        if _marker_pid != os.getpid():
            first = _marker_pid == 0
            _marker_pid = os.getpid()
            threading.Thread(target=_mark_loop, name="outbox-marks", daemon=True).start()
            if first:
                atexit.register(flush_relay_marks)
    _marks_ready.set()


def _mark_loop() -> None:
    while True:
        _marks_ready.wait()
        time.sleep(_MARK_DELAY)  # let a batch gather: one UPDATE for many requests
        _marks_ready.clear()
        with contextlib.suppress(Exception):  # this thread must outlive any failure
            flush_relay_marks()


def flush_relay_marks() -> None:
    """Mark now the rows this process relayed but has not marked yet (backlog reads, exit)."""
    from eduflow.logging import get_logger

    with _flush_lock:
        with _marks_lock:
            ids = _marks[:]
            _marks.clear()
        if not ids:
            return
        try:
            _mark_relayed(ids)
        except Exception as exc:  # the sweep will see them, get duplicates, and mark them
            with contextlib.suppress(Exception):
                get_logger("eduflow.jobs.outbox").warning(
                    "outbox_relay_unmarked", error=f"{type(exc).__name__}: {exc}", rows=len(ids)
                )


def _forget_marks_after_fork() -> None:
    # A forked child must not inherit a lock held by another thread of its parent; the
    # parent marks its own ids. (``_marker_pid`` stays the parent's: the child starts its
    # own thread on first use and keeps the inherited exit hook.)
    global _marks_lock, _flush_lock, _marks_ready
    _marks_lock = threading.Lock()
    _flush_lock = threading.Lock()
    _marks_ready = threading.Event()
    _marks.clear()


os.register_at_fork(after_in_child=_forget_marks_after_fork)


def _mark_relayed(ids: list[int]) -> None:
    from sqlalchemy import update
    from sqlmodel import col

    from eduflow.db import session_scope
    from eduflow.models._base import utcnow

    with session_scope() as session:
        session.execute(
            update(OutboxJob)
            .where(col(OutboxJob.id).in_(ids), col(OutboxJob.relayed_at).is_(None))
            .values(relayed_at=utcnow(), attempts=OutboxJob.attempts + 1)
        )


def relay_pending(batch: int = 500) -> RelayResult:
    """The sweep: hand every unrelayed row to RQ (rows are locked with SKIP LOCKED, so
    several sweepers share the work), then prune old relayed rows."""
    from sqlmodel import col, select

    from eduflow.cache.stores import get_redis
    from eduflow.db import session_scope
    from eduflow.errors import Unavailable
    from eduflow.models._base import utcnow

    client = get_redis()
    if client is None:
        raise Unavailable("relaying needs EDUFLOW_REDIS_URL (the embedded runner reads the outbox)")
    flush_relay_marks()  # rows this process already relayed are not offered again
    result = RelayResult()
    last_id = 0
    broker_down = False
    while not broker_down:
        with session_scope() as session:
            rows = session.exec(
                select(OutboxJob)
                .where(col(OutboxJob.relayed_at).is_(None), col(OutboxJob.id) > last_id)
                .order_by(col(OutboxJob.id))
                .limit(batch)
                .with_for_update(skip_locked=True)
            ).all()
            for row in rows:
                assert row.id is not None
                last_id = row.id
                try:
                    created = enqueue_row(client, row)
                except ValueError as exc:  # unknown job name: keep the row, report it
                    result.errors.append(str(exc))
                    continue
                except Exception as exc:  # Redis went away: keep what was done
                    result.errors.append(f"{type(exc).__name__}: {exc}")
                    broker_down = True
                    break
                row.relayed_at = utcnow()
                row.attempts += 1
                session.add(row)
                if created:
                    result.relayed += 1
                else:
                    result.duplicates += 1
        if len(rows) < batch:
            break
    result.pruned = prune_relayed()
    return result


def prune_relayed(older_than: timedelta | None = None) -> int:
    """Delete relayed rows older than the retention period (``EDUFLOW_OUTBOX_RETENTION_DAYS``)."""
    from sqlalchemy import delete
    from sqlmodel import col

    from eduflow.config import get_settings
    from eduflow.db import session_scope
    from eduflow.models._base import utcnow

    age = older_than or timedelta(days=get_settings().outbox_retention_days)
    with session_scope() as session:
        result: Any = session.execute(
            delete(OutboxJob).where(
                col(OutboxJob.relayed_at).is_not(None), col(OutboxJob.relayed_at) < utcnow() - age
            )
        )
        return int(result.rowcount or 0)


def outbox_backlog() -> int:
    """Rows recorded but not yet handed to the queue (or, embedded, not yet run)."""
    from sqlalchemy import func
    from sqlmodel import col, select

    from eduflow.db import session_scope

    flush_relay_marks()
    with session_scope() as session:
        return int(
            session.exec(
                select(func.count())
                .select_from(OutboxJob)
                .where(col(OutboxJob.relayed_at).is_(None))
            ).one()
        )
