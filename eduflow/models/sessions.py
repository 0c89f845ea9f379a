"""Login sessions: one row per login, tracking the current refresh token."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime
from sqlmodel import Field, SQLModel

from eduflow.models._base import created_field, optional_ts_field


class LoginSession(SQLModel, table=True):
    """A login. Refresh rotates ``refresh_jti``; a spent jti presented again revokes the row."""

    __tablename__ = "login_sessions"

    id: str = Field(primary_key=True, max_length=32)
    user_id: int = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    refresh_jti: str = Field(max_length=32)
    created_at: datetime = created_field()
    last_used_at: datetime = created_field()
    expires_at: datetime = Field(sa_type=DateTime(timezone=True), nullable=False)
    revoked_at: datetime | None = optional_ts_field()
    revoked_reason: str | None = Field(default=None, max_length=40)
