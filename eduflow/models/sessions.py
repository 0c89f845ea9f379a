"""Login sessions: one row per login, tracking the current refresh token; token schemas."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict
from pydantic import Field as SchemaField
from sqlmodel import Field, SQLModel

from eduflow.models._base import UTCDateTime, created_field, optional_ts_field

USER_AGENT_MAX_CHARS = 300


class LoginSession(SQLModel, table=True):
    """A login. Refresh rotates ``refresh_jti``; a spent jti presented again revokes the row."""

    __tablename__ = "login_sessions"

    id: str = Field(primary_key=True, max_length=32)
    user_id: int = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    refresh_jti: str = Field(max_length=32)
    created_at: datetime = created_field()
    last_used_at: datetime = created_field()
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    revoked_at: datetime | None = optional_ts_field()
    revoked_reason: str | None = Field(default=None, max_length=40)
    user_agent: str | None = Field(default=None, max_length=USER_AGENT_MAX_CHARS)
    ip: str | None = Field(default=None, max_length=64)


class SessionPublic(BaseModel):
    """One of the caller's live logins (``GET /auth/sessions/``)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "5f0c9a1d2b3e4f5a6b7c8d9e0f1a2b3c",
                    "created_at": "2026-01-05T10:00:00Z",
                    "last_used_at": "2026-01-05T10:14:00Z",
                    "user_agent": "Mozilla/5.0",
                    "ip": "203.0.113.7",
                    "current": True,
                }
            ]
        }
    )

    id: str
    created_at: datetime
    last_used_at: datetime
    user_agent: str | None
    ip: str | None
    current: bool


_JWT_EXAMPLE = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI3In0.c2lnbmF0dXJl"


class LoginRequest(BaseModel):
    """``{username, password}``; ``username`` may also be the account's email."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"username": "ada.l", "password": "analytical-42"}]},
    )

    username: str = SchemaField(min_length=1, max_length=254)
    password: str = SchemaField(min_length=1, max_length=1024)


class RefreshRequest(BaseModel):
    """A refresh token, for ``/auth/refresh/`` and ``/auth/logout/``."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"refresh": _JWT_EXAMPLE}]}
    )

    refresh: str = SchemaField(min_length=1, max_length=4096)


class TokenPair(BaseModel):
    """An access token (short-lived) and the refresh token of the same login."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "access": _JWT_EXAMPLE,
                    "refresh": _JWT_EXAMPLE,
                    "token_type": "bearer",
                    "expires_in": 900,
                }
            ]
        }
    )

    access: str
    refresh: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = SchemaField(description="Seconds until the access token expires.")
