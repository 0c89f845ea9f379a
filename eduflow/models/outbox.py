"""The job outbox: jobs recorded in the same transaction as the change that causes them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from eduflow.models._base import created_field, optional_ts_field
from eduflow.tracing import current_trace_context


class OutboxJob(SQLModel, table=True):
    """A job waiting to be handed to the queue; ``relayed_at`` is set once it is."""

    __tablename__ = "outbox_jobs"
    __table_args__ = (Index("ix_outbox_jobs_relayed_id", "relayed_at", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    job_name: str = Field(max_length=100)
    args: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    queue: str = Field(default="default", max_length=50)
    request_id: str | None = Field(default=None, max_length=64)
    # W3C traceparent of the request that recorded the job (tracing on), so the job's span
    # joins that trace.
    trace_context: str | None = Field(default_factory=current_trace_context, max_length=128)
    created_at: datetime = created_field()
    relayed_at: datetime | None = optional_ts_field()
    attempts: int = Field(default=0)
