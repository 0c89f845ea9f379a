"""The waitlist of full courses: one open entry per (student, course), in join order."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict
from pydantic import Field as SchemaField
from sqlalchemy import CheckConstraint, Index, text
from sqlmodel import Field, SQLModel

from eduflow.models._base import Id, created_field, optional_ts_field
from eduflow.waitlist_status import WaitlistStatus

__all__ = ["OPEN_STATUSES", "WaitlistEntry", "WaitlistStatus"]

OPEN_STATUSES = (WaitlistStatus.waiting.value, WaitlistStatus.offered.value)


class WaitlistEntry(SQLModel, table=True):
    """A student in line for a seat of a full course.

    Join order is the primary key (a sequence): the next in line is the waiting entry with
    the smallest id, found through ``ix_waitlist_course_status_id``, which also makes a
    ``position`` (waiting entries of the course up to this one) an index range count.
    """

    __tablename__ = "waitlist_entries"
    __table_args__ = (
        CheckConstraint(
            "status IN ('waiting', 'offered', 'accepted', 'declined', 'expired', 'left')",
            name="ck_waitlist_status",
        ),
        CheckConstraint(
            "status <> 'offered' OR offer_expires_at IS NOT NULL", name="ck_waitlist_offer_deadline"
        ),
        Index("ix_waitlist_course_status_id", "course_id", "status", "id"),
        Index("ix_waitlist_status_expires", "status", "offer_expires_at"),
        # One open entry per student and course; closed ones are history.
        Index(
            "uq_waitlist_open_entry",
            "student_id",
            "course_id",
            unique=True,
            postgresql_where=text("status IN ('waiting', 'offered')"),
            sqlite_where=text("status IN ('waiting', 'offered')"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    course_id: int = Field(foreign_key="courses.id", ondelete="CASCADE")
    student_id: int = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    status: str = Field(default=WaitlistStatus.waiting.value, max_length=20)
    created_at: datetime = created_field()
    updated_at: datetime = created_field()
    offered_at: datetime | None = optional_ts_field()
    offer_expires_at: datetime | None = optional_ts_field()
    email_sent_at: datetime | None = optional_ts_field()


# ---------------------------------------------------------------- schemas


class WaitlistJoin(BaseModel):
    """``POST /waitlist/``: the caller (a student) joins the line of a full ``course``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"course": 12}]})

    course: Id = SchemaField(description="The course id.")


class WaitlistEntryPublic(BaseModel):
    """An entry as its student, the course owner and admins see it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 77,
                    "course": 12,
                    "student": "ada.l",
                    "status": "waiting",
                    "position": 3,
                    "created_at": "2026-01-05T10:00:00Z",
                    "offer_expires_at": None,
                }
            ]
        }
    )

    id: int
    course: int
    student: str = SchemaField(description="The student's username.")
    status: WaitlistStatus
    position: int | None = SchemaField(
        description="1 for the first in line, among entries still waiting; null otherwise."
    )
    created_at: datetime
    offer_expires_at: datetime | None = SchemaField(
        description="Until when an offered seat is held for the student."
    )


class WaitlistPage(BaseModel):
    """A page of waitlist entries."""

    count: int
    next: str | None
    previous: str | None
    results: list[WaitlistEntryPublic]
