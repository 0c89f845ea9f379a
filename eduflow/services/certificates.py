"""Certificates: issue exactly once per (student, course), list, verify publicly, revoke.

Issuing rests on the table's unique (student, course) pair: the insert is ``ON CONFLICT DO
NOTHING``, so retries, duplicate jobs and concurrent runs all end with the one row the first
committed insert wrote. Nothing is checked-then-inserted.

Public reads (verification, PDF) read the row on every request (one lookup on the unique
serial index), so a revocation is visible on the very next request in every process; the
PDF bytes are cached by serial *and status*, so a revoked certificate can never be served
from a cached "valid" rendering (see ``services/certificate_files.py``).
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from eduflow.config import get_settings
from eduflow.errors import Conflict, Invalid, NotFound
from eduflow.logging import get_logger
from eduflow.models._base import utcnow
from eduflow.models.certificates import (
    REASON_MAX_CHARS,
    Certificate,
    CertificateAdminView,
    CertificatePublic,
    CertificateVerification,
)
from eduflow.models.courses import Course
from eduflow.models.enrollments import Enrollment
from eduflow.models.users import Role, User
from eduflow.services.permissions import Principal, require_authenticated, require_role

log = get_logger("eduflow.certificates")

SERIAL_BYTES = 20  # 160 bits from the OS's CSPRNG, 32 base32 characters
REASON_MIN_CHARS = 3


def new_serial() -> str:
    """An unguessable serial (``secrets``: the operating system's CSPRNG) in base32.

    Letters A-Z and digits 2-7 only: URL-safe, readable off a printed page, and never
    starting with ``-`` (which a command line would take for an option).
    """
    return base64.b32encode(secrets.token_bytes(SERIAL_BYTES)).decode("ascii").rstrip("=")


def verify_url(serial: str) -> str:
    """The public verification URL of ``serial`` (printed and encoded in the QR code)."""
    return f"{get_settings().public_base_url.rstrip('/')}/api/v1/certificates/{serial}/"


def pdf_url(serial: str) -> str:
    """The public URL of the certificate's PDF."""
    return verify_url(serial) + "pdf/"


def student_name_of(username: str, full_name: str | None) -> str:
    """The name printed on a certificate: the full name when set, else the username."""
    name = (full_name or "").strip()
    return name or username


# ---------------------------------------------------------------- issuing


@dataclass(frozen=True, slots=True)
class Issued:
    """The certificate of an enrollment and whether this call created it."""

    certificate: Certificate
    username: str
    created: bool


def not_completed(enrollment_id: int) -> Conflict:
    """The refusal to certify an enrollment whose course is not completed."""
    return Conflict(
        f"Enrollment {enrollment_id} has not completed its course",
        slug="course-not-completed",
        title="Course not completed",
    )


def issue_certificate(session: Session, enrollment_id: int) -> Issued:
    """The certificate of a completed enrollment: issued now, or the one issued before.

    Refuses (409) an enrollment that is not completed and 404s a missing one. Safe under any
    concurrency: the unique (student, course) pair makes the second insert a no-op, and the
    row read afterwards is the first one (the insert waits for a concurrent one to commit).
    """
    row = session.execute(
        select(
            col(Enrollment.student_id),
            col(Enrollment.course_id),
            col(Enrollment.completed_at),
            col(User.username),
            col(User.full_name),
            col(Course.title),
        )
        .join(User, col(User.id) == col(Enrollment.student_id))
        .join(Course, col(Course.id) == col(Enrollment.course_id))
        .where(col(Enrollment.id) == enrollment_id)
    ).one_or_none()
    if row is None:
        raise NotFound(f"No enrollment with id {enrollment_id}")
    student_id, course_id, completed_at, username, full_name, course_title = row
    if completed_at is None:
        raise not_completed(enrollment_id)
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    created_id = session.execute(
        insert(Certificate)
        .values(
            serial=new_serial(),
            student_id=student_id,
            course_id=course_id,
            enrollment_id=enrollment_id,
            student_name=student_name_of(username, full_name),
            course_title=course_title,
            issued_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["student_id", "course_id"])
        .returning(col(Certificate.id))
    ).scalar()
    certificate = session.execute(
        select(Certificate).where(
            col(Certificate.student_id) == student_id, col(Certificate.course_id) == course_id
        )
    ).scalar_one()
    if created_id is not None:
        log.info(
            "certificate_issued",
            certificate_id=certificate.id,
            enrollment_id=enrollment_id,
            course_id=course_id,
        )
    return Issued(certificate, username, created=created_id is not None)


# ---------------------------------------------------------------- reading


def _select_certificates() -> Any:
    return (
        select(Certificate, col(User.username), col(Course.owner_id))
        .outerjoin(User, col(User.id) == col(Certificate.student_id))
        .outerjoin(Course, col(Course.id) == col(Certificate.course_id))
    )


def _visible(actor: Principal) -> list[Any]:
    if actor.is_admin:
        return []
    if actor.is_instructor:
        return [col(Course.owner_id) == actor.id]
    return [col(Certificate.student_id) == actor.id]


def to_public(certificate: Certificate, username: str | None) -> CertificatePublic:
    """The representation of SPEC "Certificates"."""
    return CertificatePublic(
        serial=certificate.serial,
        course=certificate.course_id,
        course_title=certificate.course_title,
        student=username,
        student_name=certificate.student_name,
        issued_at=certificate.issued_at,
        revoked_at=certificate.revoked_at,
        status=certificate.status,
        verify_url=verify_url(certificate.serial),
    )


def to_admin_view(certificate: Certificate, username: str | None) -> CertificateAdminView:
    """The representation plus the revocation reason (admins, operators)."""
    return CertificateAdminView(
        **to_public(certificate, username).model_dump(), revoke_reason=certificate.revoke_reason
    )


def list_certificates(
    session: Session,
    actor: Principal | None,
    *,
    course_id: int | None = None,
    student: str | None = None,
    student_id: int | None = None,
    offset: int = 0,
    limit: int | None = 20,
) -> tuple[int, list[tuple[Certificate, str | None]]]:
    """``(total, page)``, newest first: students their own, instructors those of their
    courses, admins all. ``student`` filters by username; two queries per page."""
    actor = require_authenticated(actor)
    conditions = _visible(actor)
    if course_id is not None:
        conditions.append(col(Certificate.course_id) == course_id)
    if student_id is not None:
        conditions.append(col(Certificate.student_id) == student_id)
    if student is not None:
        conditions.append(col(User.username) == student)
    total = session.execute(
        select(func.count())
        .select_from(Certificate)
        .outerjoin(User, col(User.id) == col(Certificate.student_id))
        .outerjoin(Course, col(Course.id) == col(Certificate.course_id))
        .where(*conditions)
    ).scalar()
    stmt = (
        _select_certificates()
        .where(*conditions)
        .order_by(col(Certificate.issued_at).desc(), col(Certificate.id).desc())
        .offset(offset)
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    rows = session.execute(stmt).all()
    return int(total or 0), [(c, username) for c, username, _ in rows]


def find_by_serial(session: Session, serial: str, *, for_update: bool = False) -> Certificate:
    """The certificate with ``serial`` (404 when unknown)."""
    stmt = select(Certificate).where(col(Certificate.serial) == serial)
    if for_update:
        stmt = stmt.with_for_update()
    certificate: Certificate | None = session.execute(stmt).scalar_one_or_none()
    if certificate is None:
        raise NotFound("No certificate with this serial")
    return certificate


def get_certificate(
    session: Session, actor: Principal | None, serial: str
) -> tuple[Certificate, str | None]:
    """One certificate with its student's username, for those who may list it (else 404)."""
    actor = require_authenticated(actor)
    row = session.execute(
        _select_certificates().where(col(Certificate.serial) == serial, *_visible(actor))
    ).one_or_none()
    if row is None:
        raise NotFound("No certificate with this serial")
    certificate, username, _ = row
    return certificate, username


def verify_certificate(session: Session, serial: str) -> CertificateVerification:
    """What anyone may know of a certificate: name, course, date, status; nothing else."""
    certificate = find_by_serial(session, serial)
    return CertificateVerification(
        serial=certificate.serial,
        student_name=certificate.student_name,
        course_title=certificate.course_title,
        issued_at=certificate.issued_at,
        status=certificate.status,
    )


def certificate_counts(session: Session) -> tuple[int, int]:
    """``(issued, revoked)`` over every certificate ever issued (one query)."""
    issued, revoked = session.execute(
        select(func.count(), func.count(col(Certificate.revoked_at))).select_from(Certificate)
    ).one()
    return int(issued), int(revoked)


# ---------------------------------------------------------------- revoking


def clean_reason(reason: str) -> str:
    """The reason trimmed, 3 to 500 characters (422 otherwise)."""
    text = reason.strip()
    if not REASON_MIN_CHARS <= len(text) <= REASON_MAX_CHARS:
        raise Invalid.field(
            "reason", f"must be {REASON_MIN_CHARS} to {REASON_MAX_CHARS} characters"
        )
    return text


def revoke_certificate(
    session: Session, actor: Principal | None, serial: str, reason: str
) -> tuple[Certificate, str | None]:
    """Revoke (admins): ``revoked`` everywhere from the commit on, with an audit record in
    the same transaction. A revoked certificate is a 409; revoking never issues a new one."""
    actor = require_role(actor, Role.admin)
    text = clean_reason(reason)
    certificate = find_by_serial(session, serial, for_update=True)
    if certificate.revoked_at is not None:
        raise Conflict("This certificate is already revoked", slug="certificate-revoked")
    certificate.revoked_at = utcnow()
    certificate.revoke_reason = text
    session.add(certificate)
    session.flush()
    _audit_revocation(session, actor, certificate, text)
    from eduflow.services.certificate_cache import forget_cached_pdfs

    forget_cached_pdfs(session, certificate.serial)
    log.info("certificate_revoked", certificate_id=certificate.id, actor=actor.username)
    username = None
    if certificate.student_id is not None:
        username = session.execute(
            select(col(User.username)).where(col(User.id) == certificate.student_id)
        ).scalar()
    return certificate, username


def _audit_revocation(
    session: Session, actor: Principal, certificate: Certificate, reason: str
) -> None:
    """The revocation's audit record, in this transaction (target: the serial)."""
    from eduflow.services import audit

    audit.record(
        session,
        actor,
        "certificate.revoked",
        "certificate",
        certificate.serial,
        {
            "reason": reason,
            "course_id": certificate.course_id,
            "student_id": certificate.student_id,
        },
    )
