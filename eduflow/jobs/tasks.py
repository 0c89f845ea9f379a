"""Job functions. Each takes ids (not objects), opens its own session and is safe to run twice.

The same functions run under an RQ worker and in the embedded runner (no Redis).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Update, select, update
from sqlmodel import col

from eduflow.cache.stores import get_redis, get_store, key
from eduflow.config import get_settings
from eduflow.db import session_scope
from eduflow.errors import Unavailable
from eduflow.logging import get_logger
from eduflow.models import Course, Enrollment, User
from eduflow.models._base import utcnow

if TYPE_CHECKING:
    from redis import Redis

log = get_logger("eduflow.jobs")

_RELEASE_LUA = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
)


class JobBusy(Exception):
    """Another run holds this task's lock; the job is retried later (transient)."""


_RENEW_LUA = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
)


@contextmanager
def task_lock(name: str, ttl: float) -> Iterator[None]:
    """A Redis ``SET NX`` lock with expiry around a side effect; released only by its owner.

    The expiry is short and renewed every third of it while the block runs: a killed worker's
    lock lapses within ``ttl`` seconds (its job can be retried at once), however long a live
    one's send takes.
    """
    lock_key = key("jobs", "lock", name)
    token = uuid.uuid4().hex.encode()
    if not get_store().set_nx(lock_key, token, ttl):
        raise JobBusy(f"{name} is being processed by another worker")
    client = get_redis()
    done = threading.Event()
    if client is not None:
        renewer = threading.Thread(
            target=_renew, args=(client, lock_key, token, ttl, done), daemon=True
        )
        renewer.start()
    try:
        yield
    finally:
        done.set()
        if client is not None:
            client.eval(_RELEASE_LUA, 1, lock_key, token)  # type: ignore[no-untyped-call]
        elif get_store().get(lock_key) == token:
            get_store().delete(lock_key)


def _renew(client: Redis, lock_key: str, token: bytes, ttl: float, done: threading.Event) -> None:
    while not done.wait(ttl / 3):
        try:
            client.eval(_RENEW_LUA, 1, lock_key, token, int(ttl * 1000))  # type: ignore[no-untyped-call]
        except Exception as exc:  # Redis away: the lock may lapse; the marker still decides
            log.warning("task_lock_renew_failed", lock=lock_key, error=str(exc)[:200])


def send_enrollment_email(enrollment_id: int) -> str:
    """Send one enrollment's confirmation email, exactly once per enrollment.

    Protocol: take the Redis lock ``jobs:lock:email:<id>`` (so two concurrent runs never
    send together), read ``Enrollment.email_sent_at`` (the durable marker: set means done),
    send, then set the marker with ``UPDATE ... WHERE email_sent_at IS NULL``.

    What "exactly once" means over SMTP, stated honestly: EduFlow hands a job's message to
    the mail server at most once per successful run, and a retry after a completed run sends
    nothing. If the process dies after the server stored the message but before it answered
    250 (or before the marker commits), the retry sends it again: SMTP cannot tell whether a
    message it did not acknowledge was kept. The resent copy carries the same ``Message-ID``
    (``job_message_id``), by which mail servers and clients collapse duplicates; that is the
    only way to make the resend idempotent. The lock is short and renewed while the job runs,
    so a killed worker's job is retried within seconds.
    """
    from eduflow.jobs.mailer import enrollment_message, job_message_id, send_message

    settings = get_settings()
    where: str | None = None
    with task_lock(f"email:{enrollment_id}", settings.job_lock_ttl):
        try:
            # One transaction: read, send, set the marker, commit. The read holds no row
            # lock (the Redis lock serialises senders); the marker UPDATE is conditional.
            with session_scope() as session:
                # Only the columns the message needs (no ORM objects to build per job).
                row = session.execute(
                    select(
                        col(Enrollment.email_sent_at),
                        col(Enrollment.status),
                        col(User.email),
                        col(User.username),
                        col(Course.id),
                        col(Course.title),
                    )
                    .join(User, col(User.id) == col(Enrollment.student_id))
                    .join(Course, col(Course.id) == col(Enrollment.course_id))
                    .where(col(Enrollment.id) == enrollment_id)
                ).first()
                if row is None:
                    log.info(
                        "enrollment_email_skipped", enrollment_id=enrollment_id, reason="missing"
                    )
                    return "missing"
                sent_at, status, email, username, course_id, course_title = row
                if sent_at is not None:
                    log.info("enrollment_email_skipped", enrollment_id=enrollment_id, reason="sent")
                    return "already-sent"
                message = enrollment_message(
                    to=email,
                    username=username,
                    course_title=course_title,
                    course_id=course_id or 0,
                    status=status,
                )
                where = send_message(message, job_message_id("enrollment", enrollment_id))
                session.connection().execute(_mark_statement(enrollment_id))
        except Unavailable:
            if where is None:  # nothing was sent: the job is simply retried
                raise
            _mark_email_sent(enrollment_id)  # sent, but the marker did not commit: insist
    log.info("enrollment_email_sent", enrollment_id=enrollment_id, delivered_to=where)
    return "sent"


def _mark_statement(enrollment_id: int) -> Update:
    # A Core UPDATE (no ORM session synchronisation); a no-op when the marker is already set.
    return (
        update(Enrollment)
        .where(col(Enrollment.id) == enrollment_id, col(Enrollment.email_sent_at).is_(None))
        .values(email_sent_at=utcnow())
    )


def _mark_email_sent(enrollment_id: int) -> None:
    def mark() -> None:
        with session_scope() as session:
            session.connection().execute(_mark_statement(enrollment_id))

    retry_unavailable(mark)


def retry_unavailable(step: Callable[[], None], attempts: int = 5) -> None:
    """Run ``step`` (a sent email's marker), retrying for a few seconds while the database
    is unavailable: the message went out, so giving up early means sending it twice."""
    for attempt in range(attempts):
        try:
            step()
            return
        except Unavailable:
            if attempt == attempts - 1:
                raise
            time.sleep(min(2.0, 0.2 * 2**attempt))


def expire_abandoned_enrollments() -> int:
    """Expire pending enrollments older than ``EDUFLOW_PENDING_TTL`` and free their seats."""
    from eduflow.services import enrollments  # type: ignore[attr-defined,unused-ignore]

    settings = get_settings()
    try:
        with task_lock("expire", settings.job_lock_ttl), session_scope() as session:
            count = int(
                enrollments.expire_abandoned_enrollments(
                    session, older_than=timedelta(seconds=settings.pending_ttl)
                )
            )
    except JobBusy:
        log.info("expiry_skipped", reason="another run in progress")
        return 0
    log.info("enrollments_expired", count=count)
    return count


def daily_report(day: str | None = None) -> str:
    """Build (or rebuild) the daily report of ``day`` (ISO date; default: yesterday, UTC)."""
    from eduflow.services.reports import build_daily_report, default_report_day

    target = date.fromisoformat(day) if day else default_report_day()
    settings = get_settings()
    lock = task_lock(f"report:{target.isoformat()}", settings.job_lock_ttl)
    with lock, session_scope() as session:
        report = build_daily_report(session, target)
        figures = {
            "new_users": report.new_users,
            "new_enrollments": report.new_enrollments,
            "completions": report.completions,
            "certificates": report.certificates,
        }
    log.info("daily_report_built", day=target.isoformat(), **figures)
    return target.isoformat()
