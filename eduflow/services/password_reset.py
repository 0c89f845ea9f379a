"""Password reset: ask by email (202 whatever the address), confirm with the emailed token.

The request does the same work for every address: it is throttled, then records one
``send_password_reset`` job with the address and returns. Whether an account exists is
decided by the job, off the request path, so neither the answer nor its timing tells
(no enumeration). The job makes the token and sends the email in one transaction
(``eduflow.jobs.account_emails``).
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlmodel import Session, col

from eduflow.jobs.outbox import record_job
from eduflow.models.tokens import TokenPurpose
from eduflow.models.users import EMAIL_MAX_CHARS, User
from eduflow.services import account_tokens, throttle, users
from eduflow.services.permissions import Principal


def request_reset(session: Session, email: str, client_address: str) -> None:
    """Throttle (per address and per email), then record the email job for ``email``."""
    address = email.strip().lower()[:EMAIL_MAX_CHARS]
    throttle.password_reset(client_address, address)
    record_job(session, "send_password_reset", email=address, request_key=uuid.uuid4().hex)


def account_for_reset(session: Session, email: str) -> User | None:
    """The active, not deleted account with ``email`` (the job's question)."""
    return session.execute(
        select(User).where(
            col(User.email) == email.strip().lower(),  # stored lower-cased
            col(User.is_active).is_(True),
            col(User.deleted_at).is_(None),
        )
    ).scalar_one_or_none()


def confirm_reset(session: Session, token: str, password: str) -> User:
    """Spend ``token`` and set ``password``; every login of the user ends (400: bad token)."""
    _row, user = account_tokens.spend(session, token, TokenPurpose.password_reset)
    assert user.id is not None
    actor = Principal(id=user.id, username=user.username, role=users.role_of(user))
    return users.apply_new_password(session, actor, user, password, "user.password_reset")
