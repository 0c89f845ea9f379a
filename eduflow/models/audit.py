"""The audit trail: one append-only row per security-relevant change, and its schemas."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from eduflow.models._base import created_field

OPERATOR_ACTOR = "operator"


class AuditRecord(SQLModel, table=True):
    """Who (``actor_id``; None for the operator at the CLI) did what to which object.

    ``actor`` keeps the name at the time; listings show the actor's current username
    instead, so an erased account shows as its tombstone, never as its old name.
    """

    __tablename__ = "audit_records"
    __table_args__ = (
        Index("ix_audit_records_at_id", "at", "id"),
        Index("ix_audit_records_target", "target_type", "target_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = created_field()
    actor_id: int | None = Field(default=None, index=True)
    actor: str = Field(max_length=150)
    action: str = Field(max_length=60, index=True)
    target_type: str = Field(max_length=40)
    target_id: str = Field(max_length=64)
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    request_id: str | None = Field(default=None, max_length=64)


class AuditPublic(BaseModel):
    """One audit record as ``GET /audit/`` and ``eduflow admin audit list`` show it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 12,
                    "at": "2026-01-05T10:00:00Z",
                    "actor": "operator",
                    "action": "user.role_changed",
                    "target_type": "user",
                    "target_id": "7",
                    "details": {"from": "student", "to": "instructor"},
                    "request_id": None,
                }
            ]
        }
    )

    id: int
    at: datetime
    actor: str
    action: str
    target_type: str
    target_id: str
    details: dict[str, Any]
    request_id: str | None


class AuditPage(BaseModel):
    """A page of audit records, newest first."""

    count: int
    next: str | None
    previous: str | None
    results: list[AuditPublic]
