"""Daily reports: one row per day, replaced when the day is rebuilt."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from eduflow.models._base import created_field


class DailyReport(SQLModel, table=True):
    """Per-day figures of the platform."""

    __tablename__ = "daily_reports"

    day: date = Field(primary_key=True)
    new_users: int = Field(default=0)
    new_enrollments: int = Field(default=0)
    active_enrollments: int = Field(default=0)
    completions: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # None: built by a version that did not count them (``services.reports.is_final``).
    certificates: int | None = Field(default=None)
    top_courses: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    generated_at: datetime = created_field()
