"""Shared column helpers for the SQLModel tables, and shared input types of the schemas."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    GetJsonSchemaHandler,
    StrictInt,
    ValidationInfo,
    field_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema
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


def created_field(index: bool = False) -> datetime:
    """A non-null, timezone-aware creation timestamp column."""
    return Field(  # type: ignore[no-any-return]
        default_factory=utcnow, sa_type=UTCDateTime, nullable=False, index=index
    )


def optional_ts_field(index: bool = False) -> datetime | None:
    """A nullable, timezone-aware timestamp column."""
    return Field(  # type: ignore[no-any-return]
        default=None, sa_type=UTCDateTime, nullable=True, index=index
    )


def postgres_only(index: Index) -> Index:
    """``index`` on PostgreSQL only (what it serves does not exist on SQLite, such as an
    index-only scan of included columns)."""
    index.ddl_if(dialect="postgresql")
    return index


def trigram_index(name: str, column: str) -> Index:
    """A pg_trgm GIN index answering ``ILIKE '%text%'`` on ``column`` (PostgreSQL only;
    SQLite scans, which is fine at the sizes an embedded install holds)."""
    return postgres_only(
        Index(name, column, postgresql_using="gin", postgresql_ops={column: "gin_trgm_ops"})
    )


def _whole_number(value: Any) -> Any:
    # JSON Schema counts 2.0 as an integer (2020-12, "integer"): take it as 2.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# After a StrictInt and its constraints: an input integer is 2 or 2.0 (what JSON Schema calls
# an integer); true, 2.5 or "2" is a wrong type (422), never a 1, a rounding or a parsed string.
WHOLE = BeforeValidator(_whole_number)
INT_MAX = 2**31 - 1
Id = Annotated[StrictInt, Field(ge=1, le=INT_MAX), WHOLE]


class PatchBody(BaseModel):
    """The input of a PATCH: a field left out stays as it is.

    Fields named in ``not_null`` may be left out but not sent as ``null`` (422); the
    OpenAPI document says so (their type has no ``null``). The other optional fields take
    ``null`` for what their description says (unlimited, none, cleared).
    """

    not_null: ClassVar[tuple[str, ...]] = ()

    @field_validator("*", mode="before")
    @classmethod
    def _refuse_null(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None and info.field_name in cls.not_null:
            raise ValueError("may not be null")
        return value

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        target = handler.resolve_ref_schema(schema)
        for name in cls.not_null:
            prop = target.get("properties", {}).get(name)
            if prop is None:
                continue
            prop.pop("default", None)
            variants = [v for v in prop.pop("anyOf", []) if v != {"type": "null"}]
            if len(variants) == 1:
                prop.update(variants[0])
            elif variants:
                prop["anyOf"] = variants
        return schema
