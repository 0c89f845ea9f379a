"""One-time account tokens: made by the job that emails them, spent once, kept as hashes.

The secret exists in two places only: the email and the memory of the job that sent it.
The database keeps its SHA-256 (a database leak yields no usable link), the address it
was sent to (a verification token is bound to it), its expiry and ``used_at``.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import exists, select, update
from sqlmodel import Session, col

from eduflow.config import get_settings
from eduflow.errors import BadRequest
from eduflow.models._base import utcnow
from eduflow.models.tokens import AccountToken, TokenPurpose
from eduflow.models.users import User

INVALID_LINK = "This link is invalid, was already used or has expired"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _ttl(purpose: TokenPurpose) -> int:
    settings = get_settings()
    if purpose is TokenPurpose.password_reset:
        return settings.password_reset_ttl
    return settings.email_verification_ttl


def already_issued(session: Session, request_key: str) -> bool:
    """True when the request ``request_key`` already got its token (and so its email)."""
    return bool(
        session.execute(
            select(exists().where(col(AccountToken.request_key) == request_key))
        ).scalar()
    )


def issue(session: Session, user: User, purpose: TokenPurpose, request_key: str) -> str:
    """A new secret for ``user`` (flushed as a hash, bound to the current address)."""
    assert user.id is not None
    secret = secrets.token_urlsafe(32)  # 256 bits
    now = utcnow()
    session.add(
        AccountToken(
            user_id=user.id,
            purpose=purpose.value,
            token_hash=_digest(secret),
            request_key=request_key,
            email=user.email,
            created_at=now,
            expires_at=now + timedelta(seconds=_ttl(purpose)),
        )
    )
    session.flush()
    return secret


def invalid_link() -> BadRequest:
    """The one answer to a spent, expired, unknown or unbound token (400)."""
    return BadRequest(INVALID_LINK, slug="invalid-token", title="Invalid or expired link")


def spend(session: Session, secret: str, purpose: TokenPurpose) -> tuple[AccountToken, User]:
    """Mark the live token ``secret`` used and return it with its user (400 otherwise).

    The row is locked, so two concurrent uses of one link cannot both succeed.
    """
    if not secret or len(secret) > 200:
        raise invalid_link()
    row = session.execute(
        select(AccountToken)
        .where(
            col(AccountToken.token_hash) == _digest(secret),
            col(AccountToken.purpose) == purpose.value,
        )
        .with_for_update()
    ).scalar_one_or_none()
    now = utcnow()
    if row is None or row.used_at is not None or row.expires_at <= now:
        raise invalid_link()
    user = session.get(User, row.user_id)
    if user is None or user.deleted_at is not None or not user.is_active:
        raise invalid_link()
    row.used_at = now
    session.add(row)
    session.flush()
    return row, user


def spend_all(session: Session, user_id: int, purpose: TokenPurpose) -> None:
    """Spend every live token of ``user_id`` for ``purpose`` (a password or address change)."""
    session.execute(
        update(AccountToken)
        .where(
            col(AccountToken.user_id) == user_id,
            col(AccountToken.purpose) == purpose.value,
            col(AccountToken.used_at).is_(None),
        )
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
