"""Courses, with maintained counters for lessons and taken seats; their input/output schemas."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StrictBool,
    StrictInt,
    StringConstraints,
    WithJsonSchema,
    field_validator,
)
from pydantic import Field as SchemaField
from sqlalchemy import CheckConstraint, Column, Index, Numeric, Text
from sqlmodel import Field, SQLModel

from eduflow.models._base import WHOLE, PatchBody, created_field, trigram_index


class Course(SQLModel, table=True):
    """A course. ``seats_taken`` counts active + pending enrollments, ``offers_open`` the
    seats held for open waitlist offers, ``waitlist_count`` the entries still waiting (all
    three kept by the seat rules, ``services.seats``)."""

    __tablename__ = "courses"
    __table_args__ = (
        CheckConstraint("price >= 0", name="ck_courses_price_nonnegative"),
        CheckConstraint("capacity IS NULL OR capacity >= 1", name="ck_courses_capacity"),
        CheckConstraint("seats_taken >= 0", name="ck_courses_seats_taken"),
        CheckConstraint("lessons_count >= 0", name="ck_courses_lessons_count"),
        CheckConstraint("offers_open >= 0", name="ck_courses_offers_open"),
        CheckConstraint("waitlist_count >= 0", name="ck_courses_waitlist_count"),
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
    offers_open: int = Field(default=0)
    waitlist_count: int = Field(default=0)
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
# A price string is plain digits: "19.90", "5", never "1E+2", " 5" or "".
PRICE_PATTERN = r"^[0-9]{1,8}(\.[0-9]{1,2})?$"
_PRICE_DESCRIPTION = 'A decimal >= 0 with at most 2 decimals (a string such as "19.90").'


def _plain_price_string(value: Any) -> Any:
    if isinstance(value, str) and not re.fullmatch(PRICE_PATTERN, value):
        raise ValueError('a price is a number or a string of digits such as "19.90"')
    return value


CoursePrice = Annotated[
    Decimal,
    SchemaField(ge=0, le=PRICE_MAX, max_digits=10, decimal_places=2, allow_inf_nan=False),
    AfterValidator(_to_cents),
    BeforeValidator(_plain_price_string),
    # What the validators above admit, as JSON Schema says it.
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0, "maximum": PRICE_MAX, "multipleOf": 0.01},
                {"type": "string", "pattern": PRICE_PATTERN},
            ],
            "description": _PRICE_DESCRIPTION,
        }
    ),
]
# Strict: JSON true or "5" is a wrong type (422), not a capacity of 1 or 5.
CourseCapacity = Annotated[
    Annotated[StrictInt, SchemaField(ge=1, le=CAPACITY_MAX), WHOLE] | None,
    SchemaField(description="Seats; null means unlimited."),
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


class CourseUpdate(PatchBody):
    """``PATCH /courses/{id}/``: only the fields sent change; ``capacity: null`` = unlimited,
    ``description: null`` clears the description."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"price": "24.50", "capacity": 80}]}
    )
    not_null = ("title", "price", "is_published")

    title: CourseTitle | None = None
    description: CourseDescription | None = SchemaField(
        default=None, description="null clears the description (same as an empty string)."
    )
    price: CoursePrice | None = None
    is_published: StrictBool | None = None
    capacity: CourseCapacity = None

    @field_validator("description")
    @classmethod
    def _cleared(cls, value: str | None) -> str:
        return value or ""


class CoursePublic(BaseModel):
    """A course as every client sees it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 12,
                    **_COURSE_EXAMPLE,
                    "seats_taken": 31,
                    "waitlist_count": 0,
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
    waitlist_count: int = SchemaField(description="Students waiting for a seat.")
    owner: str = SchemaField(description="The owner's username.")
    lessons_count: int
    created_at: datetime
    updated_at: datetime


class CoursePage(BaseModel):
    """A page of courses."""

    count: int
    count_exact: bool = SchemaField(
        default=True,
        description=(
            "False when `count` is an estimate (listings of more than 10,000 items, "
            "searches of more than 1,000)."
        ),
    )
    next: str | None
    previous: str | None
    results: list[CoursePublic]
