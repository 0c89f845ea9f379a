"""Enrollments of students in courses; their input/output schemas."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict
from pydantic import Field as SchemaField
from sqlalchemy import CheckConstraint, Column, Index, Integer, UniqueConstraint
from sqlmodel import Field, SQLModel

from eduflow.choices import EnrollmentStatus as EnrollmentStatus
from eduflow.models._base import Id, created_field, optional_ts_field
from eduflow.models.progress import ProgressSummary


class Enrollment(SQLModel, table=True):
    """One student in one course; the unique constraint is the last line against duplicates."""

    __tablename__ = "enrollments"
    __table_args__ = (
        UniqueConstraint("student_id", "course_id", name="uq_enrollments_student_course"),
        CheckConstraint("status IN ('pending', 'active', 'expired')", name="ck_enrollments_status"),
        # Every listing is newest first: one index per filter, ending in (created_at, id).
        # course_id included: the daily report's top courses read the index alone.
        Index("ix_enrollments_created_id", "created_at", "id", postgresql_include=["course_id"]),
        # confirmed_at included: the daily report's active count reads the index alone.
        Index(
            "ix_enrollments_status_created_id",
            "status",
            "created_at",
            "id",
            postgresql_include=["confirmed_at"],
        ),
        Index("ix_enrollments_course_created_id", "course_id", "created_at", "id"),
        Index("ix_enrollments_student_created_id", "student_id", "created_at", "id"),
        CheckConstraint("completed_lessons >= 0", name="ck_enrollments_completed_lessons"),
    )

    id: int | None = Field(default=None, primary_key=True)
    student_id: int = Field(foreign_key="users.id", ondelete="CASCADE")
    course_id: int = Field(foreign_key="courses.id", ondelete="CASCADE")
    status: str = Field(default=EnrollmentStatus.pending.value, max_length=20)
    created_at: datetime = created_field()
    updated_at: datetime = created_field()
    confirmed_at: datetime | None = optional_ts_field()
    email_sent_at: datetime | None = optional_ts_field()
    # Learning progress, maintained by services.progress in the transaction of the events.
    # No Python-side default: the one-statement enrollment inserts from a SELECT.
    completed_lessons: int = Field(
        default=0, sa_column=Column(Integer, nullable=False, server_default="0")
    )
    completed_at: datetime | None = optional_ts_field(index=True)
    completion_email_sent_at: datetime | None = optional_ts_field()


# ---------------------------------------------------------------- schemas


class EnrollmentCreate(BaseModel):
    """``POST /enrollments/``: the caller (a student) enrolls in ``course``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"course": 12}]})

    course: Id = SchemaField(description="The course id.")


class EnrollmentPublic(BaseModel):
    """An enrollment as its student, the course owner and admins see it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 301,
                    "course": 12,
                    "course_title": "Intro to Python",
                    "student": "ada.l",
                    "status": "pending",
                    "created_at": "2026-01-05T10:00:00Z",
                    "updated_at": "2026-01-05T10:00:00Z",
                    "confirmed_at": None,
                    "progress": {"completed_lessons": 0, "total_lessons": 8, "percent": 0},
                    "completed_at": None,
                }
            ]
        }
    )

    id: int
    course: int
    course_title: str
    student: str = SchemaField(description="The student's username.")
    status: EnrollmentStatus
    created_at: datetime
    updated_at: datetime
    confirmed_at: datetime | None
    progress: ProgressSummary
    completed_at: datetime | None = SchemaField(
        description="When the last lesson was completed; never changes afterwards."
    )


class EnrollmentPage(BaseModel):
    """A page of enrollments."""

    count: int
    count_exact: bool = SchemaField(
        default=True,
        description="False when `count` is an estimate (listings of more than 10,000 items).",
    )
    next: str | None
    previous: str | None
    results: list[EnrollmentPublic]
