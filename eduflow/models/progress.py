"""Learning progress: one row per (enrollment, lesson), the recorded event ids, and the
input/output schemas of the progress routes.

The enrollment keeps the maintained counters (``completed_lessons``, ``completed_at``;
see ``models.enrollments``); ``services.progress`` keeps them equal to these rows.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict
from pydantic import Field as SchemaField
from sqlalchemy import CheckConstraint, Index, Uuid
from sqlmodel import Field, SQLModel

from eduflow.models._base import Id, UTCDateTime, created_field, optional_ts_field

MAX_EVENTS = 100


class LessonProgress(SQLModel, table=True):
    """What one enrollment did with one lesson; ``completed_at`` never goes back to null."""

    __tablename__ = "lesson_progress"
    __table_args__ = (
        CheckConstraint(
            "completed_at IS NULL OR viewed_at IS NOT NULL", name="ck_lesson_progress_viewed"
        ),
        Index("ix_lesson_progress_lesson", "lesson_id"),
    )

    enrollment_id: int = Field(foreign_key="enrollments.id", primary_key=True, ondelete="CASCADE")
    lesson_id: int = Field(foreign_key="lessons.id", primary_key=True, ondelete="CASCADE")
    viewed_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    completed_at: datetime | None = optional_ts_field()


class ProgressEvent(SQLModel, table=True):
    """An event id a client sent for an enrollment: a resent one is recognised and ignored."""

    __tablename__ = "progress_events"

    enrollment_id: int = Field(foreign_key="enrollments.id", primary_key=True, ondelete="CASCADE")
    event_id: uuid.UUID = Field(sa_type=Uuid, primary_key=True)
    recorded_at: datetime = created_field()


# ---------------------------------------------------------------- schemas


class EventKind(StrEnum):
    """``viewed`` opens a lesson; ``completed`` finishes it (and counts as viewed)."""

    viewed = "viewed"
    completed = "completed"


def _date_time_text(value: Any) -> Any:
    # The document says an RFC 3339 string: a number is not a Unix timestamp here.
    if not isinstance(value, str | None):
        raise ValueError("must be an RFC 3339 date-time string")
    return value


class ProgressEventIn(BaseModel):
    """One event of a batch."""

    model_config = ConfigDict(extra="forbid")

    event_id: uuid.UUID = SchemaField(
        description="Chosen by the client; a resent id is a duplicate."
    )
    lesson: Id = SchemaField(description="A lesson of the course.")
    kind: EventKind
    at: Annotated[AwareDatetime | None, BeforeValidator(_date_time_text)] = SchemaField(
        default=None, description="When it happened on the client (never in the future)."
    )


_BATCH_EXAMPLE: dict[str, Any] = {
    "events": [
        {
            "event_id": "0b7f3c1e-6a2d-4a3e-9d55-2f4c1b0e8a11",
            "lesson": 40,
            "kind": "viewed",
            "at": "2026-01-05T10:00:00Z",
        },
        {
            "event_id": "5e1d2c3b-4a59-4e8f-8c7d-6b5a4f3e2d10",
            "lesson": 40,
            "kind": "completed",
            "at": "2026-01-05T10:12:30Z",
        },
    ]
}


class ProgressBatch(BaseModel):
    """``POST /enrollments/{id}/progress/``: 1-100 events, validated as a whole."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_BATCH_EXAMPLE]})

    events: list[ProgressEventIn] = SchemaField(min_length=1, max_length=MAX_EVENTS)


class ProgressSummary(BaseModel):
    """An enrollment's progress: completed lessons of the course's lessons."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"completed_lessons": 3, "total_lessons": 8, "percent": 37}]
        }
    )

    completed_lessons: int
    total_lessons: int
    percent: int = SchemaField(ge=0, le=100, description="Rounded down.")


def progress_summary(completed_lessons: int, total_lessons: int) -> ProgressSummary:
    """``percent`` = completed / total, rounded down, capped at 100 (0 for no lessons)."""
    percent = min(100, completed_lessons * 100 // total_lessons) if total_lessons > 0 else 0
    return ProgressSummary(
        completed_lessons=completed_lessons, total_lessons=total_lessons, percent=percent
    )


class ProgressResult(BaseModel):
    """What a batch did: the enrollment's progress after it, accepted and duplicate events."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "enrollment": 301,
                    "progress": {"completed_lessons": 8, "total_lessons": 8, "percent": 100},
                    "completed_at": "2026-01-05T10:12:31Z",
                    "accepted": 2,
                    "duplicates": 0,
                }
            ]
        }
    )

    enrollment: int
    progress: ProgressSummary
    completed_at: datetime | None
    accepted: int = SchemaField(description="Events recorded now.")
    duplicates: int = SchemaField(description="Events already recorded (this or an earlier batch).")


class LessonProgressPublic(BaseModel):
    """One lesson of the course with what the enrollment did with it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "lesson": 40,
                    "title": "Loops",
                    "order_index": 3,
                    "viewed_at": "2026-01-05T10:00:00Z",
                    "completed_at": "2026-01-05T10:12:30Z",
                }
            ]
        }
    )

    lesson: int
    title: str
    order_index: int
    viewed_at: datetime | None
    completed_at: datetime | None


class LessonCompletion(BaseModel):
    """How many enrollments completed one lesson."""

    lesson: int
    title: str
    completed: int


class CourseProgress(BaseModel):
    """``GET /courses/{id}/progress/``: the course's learning figures (owner or admin)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "enrolled": 120,
                    "started": 85,
                    "completed": 31,
                    "completion_rate": 0.2583,
                    "average_percent": 46.5,
                    "lessons": [{"lesson": 40, "title": "Loops", "completed": 77}],
                }
            ]
        }
    )

    enrolled: int = SchemaField(description="Active enrollments.")
    started: int = SchemaField(description="Active enrollments with any progress.")
    completed: int = SchemaField(description="Active enrollments that completed the course.")
    completion_rate: float = SchemaField(description="completed / enrolled (0 when none).")
    average_percent: float = SchemaField(description="Mean percent of the active enrollments.")
    lessons: list[LessonCompletion]
