"""Courses, with maintained counters for lessons and taken seats."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, Column, Index, Numeric, Text
from sqlmodel import Field, SQLModel

from eduflow.models._base import created_field


class Course(SQLModel, table=True):
    """A course. ``seats_taken`` counts active + pending enrollments (kept by the service)."""

    __tablename__ = "courses"
    __table_args__ = (
        CheckConstraint("price >= 0", name="ck_courses_price_nonnegative"),
        CheckConstraint("capacity IS NULL OR capacity >= 1", name="ck_courses_capacity"),
        CheckConstraint("seats_taken >= 0", name="ck_courses_seats_taken"),
        CheckConstraint("lessons_count >= 0", name="ck_courses_lessons_count"),
        Index("ix_courses_published_created", "is_published", "created_at"),
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
