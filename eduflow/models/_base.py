"""Shared column helpers for the SQLModel tables."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Index
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC when read back.

    PostgreSQL's timestamptz already is; SQLite stores no offset and would hand back
    naive values, so the same row would serialise with "Z" on one database and
    without it on the other.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        """Store aware values in UTC."""
        if value is not None and value.tzinfo is not None:
            return value.astimezone(UTC)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        """Read naive values (SQLite) as UTC."""
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def utcnow() -> datetime:
    """Timezone-aware now in UTC; every stored timestamp uses it."""
    return datetime.now(UTC)


def created_field() -> datetime:
    """A non-null, timezone-aware creation timestamp column."""
    return Field(  # type: ignore[no-any-return]
        default_factory=utcnow, sa_type=UTCDateTime, nullable=False
    )


def optional_ts_field(index: bool = False) -> datetime | None:
    """A nullable, timezone-aware timestamp column."""
    return Field(  # type: ignore[no-any-return]
        default=None, sa_type=UTCDateTime, nullable=True, index=index
    )


def trigram_index(name: str, column: str) -> Index:
    """A pg_trgm GIN index answering ``ILIKE '%text%'`` on ``column`` (PostgreSQL only;
    SQLite scans, which is fine at the sizes an embedded install holds)."""
    index = Index(name, column, postgresql_using="gin", postgresql_ops={column: "gin_trgm_ops"})
    index.ddl_if(dialect="postgresql")
    return index
