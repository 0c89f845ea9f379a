"""Job functions. Each takes ids (not objects), opens its own session and is safe to run twice.

The same functions run under an RQ worker and in the embedded runner (no Redis).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta

from sqlalchemy import Update, select, update
from sqlmodel import col

from eduflow.cache.stores import get_redis, get_store, key
from eduflow.config import get_settings
from eduflow.db import session_scope
from eduflow.errors import Unavailable
from eduflow.logging import get_logger
from eduflow.models import Course, Enrollment, User
from eduflow.models._base import utcnow

log = get_logger("eduflow.jobs")

_RELEASE_LUA = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
)


class JobBusy(Exception):
    """Another run holds this task's lock; the job is retried later (transient)."""


@contextmanager
def task_lock(name: str, ttl: float) -> Iterator[None]:
    """A Redis ``SET NX`` lock with expiry around a side effect; released only by its owner."""
    lock_key = key("jobs", "lock", name)
    token = uuid.uuid4().hex.encode()
    if not get_store().set_nx(lock_key, token, ttl):
        raise JobBusy(f"{name} is being processed by another worker")
    try:
        yield
    finally:
        client = get_redis()
        if client is not None:
            client.eval(_RELEASE_LUA, 1, lock_key, token)  # type: ignore[no-untyped-call]
        elif get_store().get(lock_key) == token:
            get_store().delete(lock_key)


def send_enrollment_email(enrollment_id: int) -> str:
    """Send one enrollment's confirmation email, exactly once per enrollment.

    Protocol: take the Redis lock ``jobs:lock:email:<id>`` (so two concurrent runs never
    send together), read ``Enrollment.email_sent_at`` (the durable marker: set means done),
    send, then set the marker with ``UPDATE ... WHERE email_sent_at IS NULL``.

    Remaining window, stated honestly: if the process dies (or the database stays
    unreachable) after the SMTP server accepted the message but before the marker commits,
    the retry sends a second copy. The window is one short UPDATE, retried in-process for a
    few seconds; SMTP gives no way to close it completely. A lock that expires while a send
    is still running (``EDUFLOW_JOB_LOCK_TTL`` must exceed ``EDUFLOW_SMTP_TIMEOUT``) is the
    other way to lose the guarantee.
    """
    from eduflow.jobs.mailer import enrollment_message, send_message

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
                where = send_message(message)
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
        }
    log.info("daily_report_built", day=target.isoformat(), **figures)
    return target.isoformat()
