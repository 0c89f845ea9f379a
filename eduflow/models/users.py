"""Users: accounts with one role each, and their input/output schemas."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    StrictBool,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic import Field as SchemaField
from sqlalchemy import CheckConstraint, Index
from sqlmodel import Field, SQLModel

from eduflow.models._base import created_field, trigram_index

USERNAME_PATTERN = r"^[A-Za-z0-9_.]{3,150}$"
PASSWORD_MIN_CHARS = 8
PASSWORD_MAX_BYTES = 72  # bcrypt's hard limit
EMAIL_MAX_CHARS = 254


class Role(StrEnum):
    """The three roles of SPEC section 1."""

    student = "student"
    instructor = "instructor"
    admin = "admin"


class User(SQLModel, table=True):
    """An account. ``email`` is stored lower-cased so uniqueness is case-insensitive.

    ``auth_version`` grows on every change of role, activity or password; the cached
    auth state of the user is ordered by it (see ``services/auth.py``).
    """

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("role IN ('student', 'instructor', 'admin')", name="ck_users_role"),
        Index("ix_users_role_id", "role", "id"),
        trigram_index("ix_users_username_trgm", "username"),
        trigram_index("ix_users_email_trgm", "email"),
    )

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=150, unique=True, index=True)
    email: str = Field(max_length=254, unique=True, index=True)
    password_hash: str = Field(max_length=100)
    role: str = Field(default=Role.student.value, max_length=20)
    is_active: bool = Field(default=True)
    auth_version: int = Field(default=1)
    date_joined: datetime = created_field()


def password_problem(password: str, username: str | None = None) -> str | None:
    """Why ``password`` breaks the SPEC rules, or None when it is acceptable."""
    if len(password) < PASSWORD_MIN_CHARS:
        return f"must be at least {PASSWORD_MIN_CHARS} characters"
    if len(password.encode("utf-8")) > PASSWORD_MAX_BYTES:
        return f"must be at most {PASSWORD_MAX_BYTES} bytes (UTF-8)"
    if password.isdigit():
        return "must not be all digits"
    if username is not None and password == username:
        return "must not be equal to the username"
    return None


class UserCreate(BaseModel):
    """Registration input: always creates a student; any other field is refused."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"username": "ada.l", "email": "ada@example.com", "password": "analytical-42"}
            ]
        },
    )

    username: str = SchemaField(min_length=3, max_length=150, pattern=USERNAME_PATTERN)
    email: EmailStr = SchemaField(max_length=EMAIL_MAX_CHARS)
    password: str = SchemaField(min_length=PASSWORD_MIN_CHARS, max_length=PASSWORD_MAX_BYTES)

    @field_validator("email")
    @classmethod
    def _lower_email(cls, value: str) -> str:
        return value.lower()

    @field_validator("password")
    @classmethod
    def _password_rules(cls, value: str, info: ValidationInfo) -> str:
        # ``username`` is validated first (field order), so the error lands on ``password``.
        problem = password_problem(value, info.data.get("username"))
        if problem:
            raise ValueError(problem)
        return value


class UserPublic(BaseModel):
    """What a user sees of their own account (``GET /auth/me/``, registration)."""

    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": 7,
                    "username": "ada.l",
                    "email": "ada@example.com",
                    "role": "student",
                    "date_joined": "2026-01-05T10:00:00Z",
                }
            ]
        },
    )

    id: int
    username: str
    email: str
    role: Role
    date_joined: datetime


class UserAdminView(UserPublic):
    """What an admin sees of any account."""

    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": 7,
                    "username": "ada.l",
                    "email": "ada@example.com",
                    "role": "instructor",
                    "is_active": True,
                    "date_joined": "2026-01-05T10:00:00Z",
                }
            ]
        },
    )

    is_active: bool


class UserUpdate(BaseModel):
    """Admin change of an account: ``{role?, is_active?}``; nothing else."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"role": "instructor"}]}
    )

    role: Role | None = None
    is_active: StrictBool | None = None  # "yes" or 1 is a wrong type, not True

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name in ("role", "is_active"):
                if name in data and data[name] is None:
                    raise ValueError(f"{name} may not be null")
        return data


class UserPage(BaseModel):
    """A page of users."""

    count: int
    count_exact: bool = SchemaField(
        default=True,
        description="False when `count` is an estimate (listings of more than 10,000 items).",
    )
    next: str | None
    previous: str | None
    results: list[UserAdminView]
