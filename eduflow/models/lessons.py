"""Lessons of a course, ordered by ``order_index``."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Column, Index, Text
from sqlmodel import Field, SQLModel

from eduflow.models._base import created_field


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
