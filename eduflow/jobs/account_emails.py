"""Account email jobs: password reset and email verification, each email exactly once.

Protocol (like ``send_enrollment_email``): take the Redis lock ``jobs:lock:account:<key>``,
look for the token of this request (``request_key``: present means sent), make the
token and send in one transaction, commit. The secret lives only in this job's memory
and in the email; the database gets its hash in the same commit as the send.

Remaining window, stated honestly: if the commit fails after the SMTP server took the
message, the retry sends a second email; the first one's link is dead (its token never
committed), so the person has one working link either way.
"""

from __future__ import annotations

from sqlmodel import Session

from eduflow.config import get_settings
from eduflow.db import session_scope
from eduflow.jobs.tasks import task_lock
from eduflow.logging import get_logger
from eduflow.models.tokens import TokenPurpose
from eduflow.models.users import User

log = get_logger("eduflow.jobs")


def send_password_reset(email: str, request_key: str) -> str:
    """Email a reset link to the active account with ``email``, if there is one."""
    from eduflow.jobs.mailer import password_reset_message, send_message
    from eduflow.services import account_tokens
    from eduflow.services.password_reset import account_for_reset

    lock = task_lock(f"account:{request_key}", get_settings().job_lock_ttl)
    with lock, session_scope() as session:
        if account_tokens.already_issued(session, request_key):
            log.info("password_reset_email_skipped", reason="sent")
            return "already-sent"
        user = account_for_reset(session, email)
        if user is None:  # no such account: nothing is sent, the answer was the same
            log.info("password_reset_email_skipped", reason="no-account")
            return "no-account"
        token = account_tokens.issue(session, user, TokenPurpose.password_reset, request_key)
        message = password_reset_message(to=user.email, name=user.display_name, token=token)
        where = send_message(message)
    log.info("password_reset_email_sent", user_id=user.id, delivered_to=where)
    return "sent"


def send_email_verification(user_id: int, email: str, request_key: str) -> str:
    """Email a verification link for ``email`` to ``user_id``, while that is still their
    unverified address."""
    from eduflow.jobs.mailer import send_message, verification_message
    from eduflow.services import account_tokens

    lock = task_lock(f"account:{request_key}", get_settings().job_lock_ttl)
    with lock, session_scope() as session:
        if account_tokens.already_issued(session, request_key):
            log.info("verification_email_skipped", user_id=user_id, reason="sent")
            return "already-sent"
        user = _current_holder(session, user_id, email)
        if user is None:
            log.info("verification_email_skipped", user_id=user_id, reason="stale")
            return "stale"
        token = account_tokens.issue(session, user, TokenPurpose.verify_email, request_key)
        message = verification_message(to=user.email, name=user.display_name, token=token)
        where = send_message(message)
    log.info("verification_email_sent", user_id=user_id, delivered_to=where)
    return "sent"


def _current_holder(session: Session, user_id: int, email: str) -> User | None:
    user = session.get(User, user_id)
    if user is None or user.deleted_at is not None or not user.is_active:
        return None
    if user.email != email or user.email_verified:  # changed or verified meanwhile
        return None
    return user
