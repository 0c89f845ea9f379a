"""Waitlist jobs: the offer email (exactly once per offer) and the periodic offer expiry.

Same rules as the enrollment email (``tasks.send_enrollment_email``): a Redis lock around
the send, a durable sent-marker (``waitlist_entries.email_sent_at``) set by a conditional
UPDATE in the transaction that read it.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlmodel import col

from eduflow.config import get_settings
from eduflow.db import session_scope
from eduflow.errors import Unavailable
from eduflow.jobs.tasks import JobBusy, task_lock
from eduflow.logging import get_logger
from eduflow.models import Course, User
from eduflow.models._base import utcnow
from eduflow.models.waitlist import WaitlistEntry

log = get_logger("eduflow.jobs")


def send_waitlist_offer(entry_id: int) -> str:
    """Send the offer email of one waitlist entry (with its deadline), exactly once."""
    from eduflow.jobs.mailer import job_message_id, send_message, waitlist_offer_message

    settings = get_settings()
    sent_where: str | None = None
    mark = (
        update(WaitlistEntry)
        .where(col(WaitlistEntry.id) == entry_id, col(WaitlistEntry.email_sent_at).is_(None))
        .values(email_sent_at=utcnow())
    )
    with task_lock(f"waitlist-offer:{entry_id}", settings.job_lock_ttl):
        try:
            with session_scope() as session:
                row = session.execute(
                    select(
                        col(WaitlistEntry.email_sent_at),
                        col(WaitlistEntry.offer_expires_at),
                        col(User.email),
                        col(User.username),
                        col(User.full_name),
                        col(Course.id),
                        col(Course.title),
                    )
                    .join(User, col(User.id) == col(WaitlistEntry.student_id))
                    .join(Course, col(Course.id) == col(WaitlistEntry.course_id))
                    .where(col(WaitlistEntry.id) == entry_id)
                ).first()
                if row is None or row.offer_expires_at is None:
                    log.info("waitlist_offer_email_skipped", entry_id=entry_id, reason="missing")
                    return "missing"
                if row.email_sent_at is not None:
                    log.info("waitlist_offer_email_skipped", entry_id=entry_id, reason="sent")
                    return "already-sent"
                message = waitlist_offer_message(
                    to=row.email,
                    name=row.full_name or row.username,
                    course_title=row.title,
                    entry_id=entry_id,
                    deadline=row.offer_expires_at,
                )
                sent_where = send_message(message, job_message_id("waitlist-offer", entry_id))
                session.connection().execute(mark)
        except Unavailable:
            if sent_where is None:
                raise
            with session_scope() as session:  # sent, but the marker did not commit: insist
                session.connection().execute(mark)
    log.info("waitlist_offer_email_sent", entry_id=entry_id, delivered_to=sent_where)
    return "sent"


def expire_waitlist_offers() -> int:
    """Expire waitlist offers past their deadline; each held seat goes to the next in line."""
    from eduflow.services import waitlist

    settings = get_settings()
    try:
        with task_lock("expire-waitlist", settings.job_lock_ttl), session_scope() as session:
            count = waitlist.expire_offers(session)
    except JobBusy:
        log.info("waitlist_expiry_skipped", reason="another run in progress")
        return 0
    log.info("waitlist_offers_expired", count=count)
    return count
