"""Lessons of a course, ordered by ``order_index``; their input/output schemas."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StrictInt, StringConstraints
from pydantic import Field as SchemaField
from sqlalchemy import CheckConstraint, Column, Index, Text
from sqlmodel import Field, SQLModel

from eduflow.models._base import WHOLE, Id, PatchBody, created_field


class Lesson(SQLModel, table=True):
    """A lesson; deleted with its course."""

    __tablename__ = "lessons"
    __table_args__ = (
        CheckConstraint("duration_min IS NULL OR duration_min >= 1", name="ck_lessons_duration"),
        CheckConstraint("order_index >= 1", name="ck_lessons_order_index"),
        Index("ix_lessons_course_order", "course_id", "order_index"),
    )

    id: int | None = Field(default=None, primary_key=True)
    course_id: int = Field(foreign_key="courses.id", ondelete="CASCADE")
    title: str = Field(max_length=200)
    content: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    duration_min: int | None = Field(default=None)
    order_index: int = Field(default=1)
    created_at: datetime = created_field()
    updated_at: datetime = created_field()


# ---------------------------------------------------------------- schemas


LessonTitle = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=3, max_length=200),
    SchemaField(description="Trimmed, 3-200 characters.", examples=["Loops"]),
]
LessonContent = Annotated[str | None, SchemaField(max_length=200_000)]
# Strict ints: JSON true, 2.0 or "2" is a wrong type (422).
DurationMin = Annotated[
    Annotated[StrictInt, SchemaField(ge=1, le=100_000), WHOLE] | None,
    SchemaField(description="Minutes."),
]
OrderIndex = Annotated[
    StrictInt, SchemaField(ge=1, le=1_000_000, description="Position, from 1."), WHOLE
]

_LESSON_EXAMPLE: dict[str, Any] = {
    "course": 12,
    "title": "Loops",
    "content": "for and while, with exercises.",
    "duration_min": 25,
    "order_index": 3,
}


class LessonCreate(BaseModel):
    """``POST /lessons/`` (and ``PUT``); ``order_index`` defaults to after the last lesson."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_LESSON_EXAMPLE]})

    course: Id = SchemaField(description="The course id.")
    title: LessonTitle
    content: LessonContent = None
    duration_min: DurationMin = None
    order_index: OrderIndex | None = None


class LessonUpdate(PatchBody):
    """``PATCH /lessons/{id}/``: only the fields sent change (a lesson never changes course);
    ``content: null`` and ``duration_min: null`` clear them."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"title": "Loops and ranges"}]}
    )
    not_null = ("title", "order_index")

    title: LessonTitle | None = None
    content: LessonContent = None
    duration_min: DurationMin = None
    order_index: OrderIndex | None = None


class LessonPublic(BaseModel):
    """A lesson; ``content`` is null unless the caller may read it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 40,
                    **_LESSON_EXAMPLE,
                    "created_at": "2026-01-05T10:00:00Z",
                    "updated_at": "2026-01-05T10:00:00Z",
                }
            ]
        }
    )

    id: int
    course: int
    title: str
    content: str | None = SchemaField(
        description="Only for the course owner, admins and actively enrolled students."
    )
    duration_min: int | None
    order_index: int
    created_at: datetime
    updated_at: datetime


class LessonPage(BaseModel):
    """A page of lessons."""

    count: int
    next: str | None
    previous: str | None
    results: list[LessonPublic]
