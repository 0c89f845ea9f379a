"""Courses, with maintained counters for lessons and taken seats; their input/output schemas."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    StrictBool,
    StrictInt,
    StringConstraints,
    field_validator,
)
from pydantic import Field as SchemaField
from sqlalchemy import CheckConstraint, Column, Index, Numeric, Text
from sqlmodel import Field, SQLModel

from eduflow.models._base import created_field, trigram_index


class Course(SQLModel, table=True):
    """A course. ``seats_taken`` counts active + pending enrollments (kept by the service)."""

    __tablename__ = "courses"
    __table_args__ = (
        CheckConstraint("price >= 0", name="ck_courses_price_nonnegative"),
        CheckConstraint("capacity IS NULL OR capacity >= 1", name="ck_courses_capacity"),
        CheckConstraint("seats_taken >= 0", name="ck_courses_seats_taken"),
        CheckConstraint("lessons_count >= 0", name="ck_courses_lessons_count"),
        # One index per ordering of the public catalogue (published first, id breaks ties),
        # one for the admin's default ordering, and trigram indexes for ?search=.
        Index("ix_courses_published_created_id", "is_published", "created_at", "id"),
        Index("ix_courses_published_price_id", "is_published", "price", "id"),
        Index("ix_courses_published_title_id", "is_published", "title", "id"),
        Index("ix_courses_created_id", "created_at", "id"),
        trigram_index("ix_courses_title_trgm", "title"),
        trigram_index("ix_courses_description_trgm", "description"),
    )

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=200)
    description: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    price: Decimal = Field(
        default=Decimal("0.00"), sa_column=Column(Numeric(10, 2), nullable=False)
    )
    is_published: bool = Field(default=False)
    capacity: int | None = Field(default=None)
    seats_taken: int = Field(default=0)
    lessons_count: int = Field(default=0)
    owner_id: int = Field(foreign_key="users.id", index=True, ondelete="RESTRICT")
    created_at: datetime = created_field()
    updated_at: datetime = created_field()


# ---------------------------------------------------------------- schemas

PRICE_MAX = Decimal("99999999.99")  # Numeric(10, 2)
CAPACITY_MAX = 1_000_000
CENT = Decimal("0.01")


def _to_cents(value: Decimal) -> Decimal:
    # "1E+2" -> 100.00 and "-0" -> 0.00: one canonical form end to end.
    return value.quantize(CENT) + Decimal("0.00")


CourseTitle = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=3, max_length=200),
    SchemaField(description="Trimmed, 3-200 characters.", examples=["Intro to Python"]),
]
CourseDescription = Annotated[str, SchemaField(max_length=20_000)]
CoursePrice = Annotated[
    Decimal,
    SchemaField(
        ge=0,
        le=PRICE_MAX,
        max_digits=10,
        decimal_places=2,
        allow_inf_nan=False,
        description='A decimal >= 0 with at most 2 decimals (a string such as "19.90").',
    ),
    AfterValidator(_to_cents),
]
# Strict: JSON true or "5" is a wrong type (422), not a capacity of 1 or 5.
CourseCapacity = Annotated[
    StrictInt | None,
    SchemaField(ge=1, le=CAPACITY_MAX, description="Seats; null means unlimited."),
]

_COURSE_EXAMPLE: dict[str, Any] = {
    "title": "Intro to Python",
    "description": "Variables, loops and functions.",
    "price": "19.90",
    "is_published": True,
    "capacity": 50,
}


class CourseCreate(BaseModel):
    """``POST /courses/`` (and ``PUT``: the whole course, omitted fields take defaults)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_COURSE_EXAMPLE]})

    title: CourseTitle
    description: CourseDescription = ""
    price: CoursePrice = Decimal("0.00")
    is_published: StrictBool = False
    capacity: CourseCapacity = None


class CourseUpdate(BaseModel):
    """``PATCH /courses/{id}/``: only the fields sent change; ``capacity: null`` = unlimited."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"price": "24.50", "capacity": 80}]}
    )

    title: CourseTitle | None = None
    description: CourseDescription | None = None
    price: CoursePrice | None = None
    is_published: StrictBool | None = None
    capacity: CourseCapacity = None

    @field_validator("title", "description", "price", "is_published", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may not be null")
        return value


class CoursePublic(BaseModel):
    """A course as every client sees it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 12,
                    **_COURSE_EXAMPLE,
                    "seats_taken": 31,
                    "owner": "grace.h",
                    "lessons_count": 8,
                    "created_at": "2026-01-05T10:00:00Z",
                    "updated_at": "2026-01-06T09:30:00Z",
                }
            ]
        }
    )

    id: int
    title: str
    description: str
    price: str = SchemaField(description="Decimal string with two decimals.", examples=["19.90"])
    is_published: bool
    capacity: int | None
    seats_taken: int
    owner: str = SchemaField(description="The owner's username.")
    lessons_count: int
    created_at: datetime
    updated_at: datetime


class CoursePage(BaseModel):
    """A page of courses."""

    count: int
    count_exact: bool = SchemaField(
        default=True,
        description="False when `count` is an estimate (listings of more than 10,000 items).",
    )
    next: str | None
    previous: str | None
    results: list[CoursePublic]
