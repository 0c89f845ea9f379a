"""Users: accounts with one role each, and their input/output schemas."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    StrictBool,
    ValidationInfo,
    field_validator,
)
from pydantic import Field as SchemaField
from sqlalchemy import CheckConstraint, Index
from sqlmodel import Field, SQLModel

from eduflow.choices import Role as Role
from eduflow.models._base import PatchBody, created_field, optional_ts_field, trigram_index

USERNAME_PATTERN = r"^[A-Za-z0-9_.]{3,150}$"
PASSWORD_MIN_CHARS = 8
PASSWORD_MAX_BYTES = 72  # bcrypt's hard limit
EMAIL_MAX_CHARS = 254
FULL_NAME_MAX_CHARS = 150
# What the OpenAPI document says of a new password: the rules of ``password_problem`` that
# JSON Schema can state (``\D``: not all digits); the description gives the others.
NEW_PASSWORD_SCHEMA: dict[str, Any] = {
    "minLength": PASSWORD_MIN_CHARS,
    "maxLength": PASSWORD_MAX_BYTES,
    "pattern": r"\D",
    "description": f"{PASSWORD_MIN_CHARS}-{PASSWORD_MAX_BYTES} characters, at most "
    f"{PASSWORD_MAX_BYTES} bytes in UTF-8, not all digits, not the username.",
}
# A new password in the change and reset bodies: the service checks it (``password_problem``)
# and answers one clear 422; the document states the rules.
NewPassword = Annotated[
    str, SchemaField(min_length=1, max_length=1024, json_schema_extra=NEW_PASSWORD_SCHEMA)
]


class User(SQLModel, table=True):
    """An account. ``email`` is stored lower-cased so uniqueness is case-insensitive.

    ``auth_version`` grows on every change of role, activity, password or profile; the
    cached auth state of the user is ordered by it (see ``services/auth_state.py``).
    A deleted account keeps its row (enrollments, certificates and audit records point
    at it) with ``deleted_at`` set and its personal fields replaced by a tombstone.
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
    date_joined: datetime = created_field(index=True)  # the daily report's new accounts
    full_name: str = Field(default="", max_length=FULL_NAME_MAX_CHARS)
    email_verified: bool = Field(default=False)
    deleted_at: datetime | None = optional_ts_field()

    @property
    def display_name(self) -> str:
        """The full name when there is one, else the username (certificates, emails)."""
        return self.full_name.strip() or self.username


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
    password: str = SchemaField(
        min_length=PASSWORD_MIN_CHARS,
        max_length=PASSWORD_MAX_BYTES,
        json_schema_extra=NEW_PASSWORD_SCHEMA,
    )
    full_name: str = SchemaField(default="", max_length=FULL_NAME_MAX_CHARS)

    @field_validator("full_name")
    @classmethod
    def _trim_name(cls, value: str) -> str:
        return value.strip()

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
                    "email_verified": True,
                    "full_name": "Ada Lovelace",
                    "role": "student",
                    "date_joined": "2026-01-05T10:00:00Z",
                }
            ]
        },
    )

    id: int
    username: str
    email: str
    email_verified: bool
    full_name: str
    role: Role
    date_joined: datetime


class ProfileUpdate(PatchBody):
    """``PATCH /auth/me/``: ``{full_name?, email?}``; a new email must be verified again."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"full_name": "Ada Lovelace", "email": "ada@example.org"}]},
    )
    not_null = ("full_name", "email")

    full_name: str | None = SchemaField(default=None, max_length=FULL_NAME_MAX_CHARS)
    email: EmailStr | None = SchemaField(default=None, max_length=EMAIL_MAX_CHARS)

    @field_validator("full_name")
    @classmethod
    def _trim_name(cls, value: str | None) -> str | None:
        return value.strip() if value is not None else None

    @field_validator("email")
    @classmethod
    def _lower_email(cls, value: str | None) -> str | None:
        return value.lower() if value is not None else None


class PasswordChange(BaseModel):
    """``POST /auth/password/``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"current_password": "analytical-42", "new_password": "difference-1822"}]
        },
    )

    current_password: str = SchemaField(min_length=1, max_length=1024)
    new_password: NewPassword


class PasswordConfirm(BaseModel):
    """``DELETE /auth/me/``: the password confirms the deletion."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"password": "analytical-42"}]}
    )

    password: str = SchemaField(min_length=1, max_length=1024)


class PasswordResetRequest(BaseModel):
    """``POST /auth/password-reset/``."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"email": "ada@example.com"}]}
    )

    email: EmailStr = SchemaField(max_length=EMAIL_MAX_CHARS)


class PasswordResetConfirm(BaseModel):
    """``POST /auth/password-reset/confirm/``: the emailed token and the new password."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"token": "Zk3x…from-the-email", "password": "difference-1822"}]
        },
    )

    token: str = SchemaField(min_length=1, max_length=200)
    password: NewPassword


class EmailVerification(BaseModel):
    """``POST /auth/verify-email/``: the emailed token."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"token": "Zk3x…from-the-email"}]}
    )

    token: str = SchemaField(min_length=1, max_length=200)


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
                    "email_verified": True,
                    "full_name": "Ada Lovelace",
                    "role": "instructor",
                    "is_active": True,
                    "date_joined": "2026-01-05T10:00:00Z",
                }
            ]
        },
    )

    is_active: bool


class UserUpdate(PatchBody):
    """Admin change of an account: ``{role?, is_active?}``; nothing else."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"role": "instructor"}]}
    )
    not_null = ("role", "is_active")

    role: Role | None = None
    is_active: StrictBool | None = None  # "yes" or 1 is a wrong type, not True


class UserPage(BaseModel):
    """A page of users."""

    count: int
    count_exact: bool = SchemaField(
        default=True,
        description=(
            "False when `count` is an estimate (listings of more than 10,000 items, "
            "searches of more than 1,000)."
        ),
    )
    next: str | None
    previous: str | None
    results: list[UserAdminView]
