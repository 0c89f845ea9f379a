"""Shared column helpers for the SQLModel tables."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime
from sqlmodel import Field


def utcnow() -> datetime:
    """Timezone-aware now in UTC; every stored timestamp uses it."""
    return datetime.now(UTC)


def created_field() -> datetime:
    """A non-null, timezone-aware creation timestamp column."""
    return Field(  # type: ignore[no-any-return]
        default_factory=utcnow, sa_type=DateTime(timezone=True), nullable=False
    )


def optional_ts_field(index: bool = False) -> datetime | None:
    """A nullable, timezone-aware timestamp column."""
    return Field(  # type: ignore[no-any-return]
        default=None, sa_type=DateTime(timezone=True), nullable=True, index=index
    )
