"""One-time account tokens (password reset, email verification), stored only as hashes."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint
from sqlmodel import Field, SQLModel

from eduflow.models._base import UTCDateTime, created_field, optional_ts_field


class TokenPurpose(StrEnum):
    """What a one-time token may be spent on."""

    password_reset = "password_reset"
    verify_email = "verify_email"


class AccountToken(SQLModel, table=True):
    """A token sent by email. Only the SHA-256 of the secret is kept; ``email`` binds a
    verification token to the address it was sent to; ``used_at`` makes it single-use.

    The row is made by the job that sends the email, in the same transaction as the send;
    ``request_key`` names the request that asked for it, so a retried job sends once.
    """

    __tablename__ = "account_tokens"
    __table_args__ = (
        CheckConstraint(
            "purpose IN ('password_reset', 'verify_email')", name="ck_account_tokens_purpose"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    purpose: str = Field(max_length=20)
    token_hash: str = Field(max_length=64, unique=True)
    request_key: str = Field(max_length=32, unique=True)
    email: str = Field(max_length=254)
    created_at: datetime = created_field()
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    used_at: datetime | None = optional_ts_field()
