"""Enrollments of students in courses."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from eduflow.models._base import created_field, optional_ts_field


class EnrollmentStatus(StrEnum):
    """pending (paid, unconfirmed) -> active; pending -> expired when abandoned."""

    pending = "pending"
    active = "active"
    expired = "expired"


class Enrollment(SQLModel, table=True):
    """One student in one course; the unique constraint is the last line against duplicates."""

    __tablename__ = "enrollments"
    __table_args__ = (
        UniqueConstraint("student_id", "course_id", name="uq_enrollments_student_course"),
        CheckConstraint("status IN ('pending', 'active', 'expired')", name="ck_enrollments_status"),
        Index("ix_enrollments_status_created", "status", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    student_id: int = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    course_id: int = Field(foreign_key="courses.id", index=True, ondelete="CASCADE")
    status: str = Field(default=EnrollmentStatus.pending.value, max_length=20)
    created_at: datetime = created_field()
    updated_at: datetime = created_field()
    confirmed_at: datetime | None = optional_ts_field()
    email_sent_at: datetime | None = optional_ts_field()
