"""Users: accounts with one role each."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint
from sqlmodel import Field, SQLModel

from eduflow.models._base import created_field


class Role(StrEnum):
    """The three roles of SPEC section 1."""

    student = "student"
    instructor = "instructor"
    admin = "admin"


class User(SQLModel, table=True):
    """An account. ``email`` is stored lower-cased so uniqueness is case-insensitive."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("role IN ('student', 'instructor', 'admin')", name="ck_users_role"),
    )

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=150, unique=True, index=True)
    email: str = Field(max_length=254, unique=True, index=True)
    password_hash: str = Field(max_length=100)
    role: str = Field(default=Role.student.value, max_length=20, index=True)
    is_active: bool = Field(default=True)
    date_joined: datetime = created_field()
