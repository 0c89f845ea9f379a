"""Certificates of completion: one per (student, course), ever; their output schemas."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict
from pydantic import Field as SchemaField
from sqlalchemy import Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from eduflow.models._base import created_field, optional_ts_field

SERIAL_MAX_CHARS = 64
REASON_MAX_CHARS = 500


class CertificateStatus(StrEnum):
    """``valid`` until an admin revokes it; a revoked certificate never becomes valid again."""

    valid = "valid"
    revoked = "revoked"


class Certificate(SQLModel, table=True):
    """An issued certificate.

    The unique (student, course) pair is what makes issuing exactly-once under any
    concurrency (the insert is ``ON CONFLICT DO NOTHING``). ``student_name`` and
    ``course_title`` are copied at issue and never written again, so renaming a course,
    deleting it or erasing an account leaves the certificate verifiable as issued; the
    references are kept nullable for the same reason.
    """

    __tablename__ = "certificates"
    __table_args__ = (
        UniqueConstraint("student_id", "course_id", name="uq_certificates_student_course"),
        Index("ix_certificates_issued_at", "issued_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    serial: str = Field(max_length=SERIAL_MAX_CHARS, unique=True, index=True)
    student_id: int | None = Field(
        default=None, foreign_key="users.id", index=True, ondelete="SET NULL"
    )
    course_id: int | None = Field(
        default=None, foreign_key="courses.id", index=True, ondelete="SET NULL"
    )
    enrollment_id: int | None = Field(
        default=None, foreign_key="enrollments.id", ondelete="SET NULL"
    )
    student_name: str = Field(max_length=150)
    course_title: str = Field(max_length=200)
    issued_at: datetime = created_field()
    revoked_at: datetime | None = optional_ts_field()
    revoke_reason: str | None = Field(default=None, sa_type=Text, nullable=True)

    @property
    def status(self) -> CertificateStatus:
        """``revoked`` once ``revoked_at`` is set."""
        return CertificateStatus.valid if self.revoked_at is None else CertificateStatus.revoked


# ---------------------------------------------------------------- schemas


class CertificatePublic(BaseModel):
    """A certificate as its student, the course owner and admins see it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "serial": "MZXW6YTBOI4DSNBTGQ2TMNZYHE3DIMZV",
                    "course": 12,
                    "course_title": "Intro to Python",
                    "student": "ada.l",
                    "student_name": "Ada Lovelace",
                    "issued_at": "2026-02-01T10:00:00Z",
                    "revoked_at": None,
                    "status": "valid",
                    "verify_url": "https://eduflow.example/api/v1/certificates/MZXW6YTBOI4DSNBTGQ2TMNZYHE3DIMZV/",
                }
            ]
        }
    )

    serial: str
    course: int | None = SchemaField(description="The course id (null once it was deleted).")
    course_title: str = SchemaField(description="The course title at issue.")
    student: str | None = SchemaField(description="The student's username.")
    student_name: str = SchemaField(description="The student's name at issue.")
    issued_at: datetime
    revoked_at: datetime | None
    status: CertificateStatus
    verify_url: str = SchemaField(description="Public verification URL (also in the QR code).")


class CertificateAdminView(CertificatePublic):
    """What an admin (and the operator) sees: the revocation reason too."""

    revoke_reason: str | None


class CertificateVerification(BaseModel):
    """What anyone may see of a certificate, with no authentication: nothing more."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "serial": "MZXW6YTBOI4DSNBTGQ2TMNZYHE3DIMZV",
                    "student_name": "Ada Lovelace",
                    "course_title": "Intro to Python",
                    "issued_at": "2026-02-01T10:00:00Z",
                    "status": "valid",
                }
            ]
        }
    )

    serial: str
    student_name: str
    course_title: str
    issued_at: datetime
    status: CertificateStatus


class CertificateRevoke(BaseModel):
    """``POST /certificates/{serial}/revoke/``: why the certificate is withdrawn."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"reason": "Issued for a course completed by mistake"}]},
    )

    reason: str = SchemaField(min_length=3, max_length=REASON_MAX_CHARS)


class CertificatePage(BaseModel):
    """A page of certificates."""

    count: int
    next: str | None
    previous: str | None
    results: list[CertificatePublic]
