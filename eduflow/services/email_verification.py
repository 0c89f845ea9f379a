"""Email verification: one email per registration or address change, spent once.

The token is bound to the address it was sent to: an address change spends every
outstanding link, and spending one checks that the account still has that address.
``EDUFLOW_REQUIRE_VERIFIED_EMAIL`` makes enrollment need a verified address.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlmodel import Session, col

from eduflow.config import get_settings
from eduflow.errors import Forbidden
from eduflow.jobs.outbox import record_job
from eduflow.models.tokens import TokenPurpose
from eduflow.models.users import User
from eduflow.services import account_tokens, throttle, users
from eduflow.services.permissions import Principal


def send_verification(session: Session, user: User) -> None:
    """Record the verification email for ``user``'s current address (same transaction)."""
    assert user.id is not None
    record_job(
        session,
        "send_email_verification",
        user_id=user.id,
        email=user.email,
        request_key=uuid.uuid4().hex,
    )


def resend(session: Session, actor: Principal) -> None:
    """Send the verification email again (throttled); nothing to do once verified."""
    throttle.verification_resend(actor.id)
    user = users.get_user(session, actor.id)
    if not user.email_verified:
        send_verification(session, user)


def verify(session: Session, token: str) -> User:
    """Spend ``token``: the address it was sent to is verified (400 when it changed since)."""
    row, user = account_tokens.spend(session, token, TokenPurpose.verify_email)
    if row.email != user.email:
        raise account_tokens.invalid_link()
    if not user.email_verified:
        user.email_verified = True
        users.changed(session, user)
    return user


def require_verified(session: Session, actor: Principal) -> None:
    """403 when the policy asks for a verified address and ``actor`` has none."""
    if not get_settings().require_verified_email:
        return
    verified = session.execute(
        select(col(User.email_verified)).where(col(User.id) == actor.id)
    ).scalar()
    if not verified:
        raise Forbidden("Verify your email address before enrolling", slug="email-not-verified")
