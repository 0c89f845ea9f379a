"""The ``course_completed`` job: the certificate, then one congratulation email.

Recorded in the outbox by the transaction that completed the enrollment (exactly one row
per enrollment: ``completed_at`` is set once, under the enrollment's row lock). Safe to
run twice: the certificate issuer is idempotent, and the email follows the same protocol
as the confirmation email (``send_enrollment_email``): a Redis lock around the send and a
durable marker, ``Enrollment.completion_email_sent_at``.
"""

from __future__ import annotations

from sqlalchemy import Update, select, update
from sqlmodel import col

from eduflow.config import get_settings
from eduflow.db import session_scope
from eduflow.errors import Unavailable
from eduflow.jobs.tasks import log, retry_unavailable, task_lock
from eduflow.models import Course, Enrollment, User
from eduflow.models._base import utcnow


def course_completed(enrollment_id: int) -> str:
    """Issue the completed enrollment's certificate, then send its congratulation email once."""
    from eduflow.jobs.mailer import completion_message, job_message_id, send_message
    from eduflow.services.certificates import pdf_url, verify_url
    from eduflow.services.progress import issue_completion_certificate

    settings = get_settings()
    where: str | None = None
    with task_lock(f"completed:{enrollment_id}", settings.job_lock_ttl):
        with session_scope() as session:
            issued = issue_completion_certificate(session, enrollment_id)
            if issued is None:
                log.info("course_completed_skipped", enrollment_id=enrollment_id, reason="missing")
                return "missing"
            serial = issued.certificate.serial
            name = issued.certificate.student_name  # the certificate's name: full, else username
        try:
            with session_scope() as session:
                row = session.execute(
                    select(
                        col(Enrollment.completion_email_sent_at),
                        col(User.email),
                        col(Course.id),
                        col(Course.title),
                        col(Course.lessons_count),
                    )
                    .join(User, col(User.id) == col(Enrollment.student_id))
                    .join(Course, col(Course.id) == col(Enrollment.course_id))
                    .where(col(Enrollment.id) == enrollment_id)
                ).first()
                if row is None:
                    return "missing"
                sent_at, email, course_id, course_title, lessons = row
                if sent_at is not None:
                    log.info("completion_email_skipped", enrollment_id=enrollment_id, reason="sent")
                    return "already-sent"
                message = completion_message(
                    to=email,
                    name=name,
                    course_title=course_title,
                    course_id=course_id,
                    lessons=lessons,
                    certificate_url=verify_url(serial),
                    certificate_pdf_url=pdf_url(serial),
                )
                where = send_message(message, job_message_id("completion", enrollment_id))
                session.connection().execute(_mark_statement(enrollment_id))
        except Unavailable:
            if where is None:  # nothing was sent: the job is simply retried
                raise
            retry_unavailable(lambda: _mark(enrollment_id))  # sent: the marker must land
    log.info("completion_email_sent", enrollment_id=enrollment_id, delivered_to=where)
    return "sent"


def _mark_statement(enrollment_id: int) -> Update:
    return (
        update(Enrollment)
        .where(
            col(Enrollment.id) == enrollment_id, col(Enrollment.completion_email_sent_at).is_(None)
        )
        .values(completion_email_sent_at=utcnow())
    )


def _mark(enrollment_id: int) -> None:
    with session_scope() as session:
        session.connection().execute(_mark_statement(enrollment_id))
