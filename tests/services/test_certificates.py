"""Issuing certificates: exactly once per (student, course), only for completed enrollments."""

from __future__ import annotations

import base64
import re
import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import select

from eduflow.db import session_scope
from eduflow.errors import Conflict, NotFound
from eduflow.models import Certificate
from eduflow.models.users import Role
from eduflow.services import certificates
from eduflow.services.certificates import issue_certificate, new_serial, student_name_of
from tests.factories import make_course, make_enrollment, make_user

COMPLETED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_serials_are_url_safe_and_carry_at_least_128_random_bits() -> None:
    serials = {new_serial() for _ in range(2000)}
    assert len(serials) == 2000
    for serial in serials:
        assert re.fullmatch(r"[A-Z2-7]+", serial)  # never a leading "-" (a CLI option)
        raw = base64.b32decode(serial + "=" * (-len(serial) % 8))
        assert len(raw) * 8 >= 128


@given(
    username=st.from_regex(r"[A-Za-z0-9_.]{3,20}", fullmatch=True),
    full_name=st.one_of(st.none(), st.text(max_size=150)),
)
def test_the_printed_name_is_the_full_name_else_the_username(
    username: str, full_name: str | None
) -> None:
    name = student_name_of(username, full_name)
    if full_name and full_name.strip():
        assert name == full_name.strip()
    else:
        assert name == username


def _completed_enrollment(session: Any, **user_fields: Any) -> Any:
    student = make_user(session, Role.student, **user_fields)
    course = make_course(session, title="Practical Databases")
    return make_enrollment(session, student, course, completed_at=COMPLETED)


def test_a_completed_enrollment_gets_one_certificate(session: Any) -> None:
    enrollment = _completed_enrollment(session, username="ada", full_name="Ада Лавлейс")
    first = issue_certificate(session, enrollment.id)
    again = issue_certificate(session, enrollment.id)
    assert first.created and not again.created
    assert again.certificate.serial == first.certificate.serial
    assert first.certificate.student_name == "Ада Лавлейс"
    assert first.certificate.course_title == "Practical Databases"
    assert first.username == "ada"
    assert session.exec(select(Certificate)).all() == [first.certificate]


def test_the_username_is_printed_without_a_full_name(session: Any) -> None:
    enrollment = _completed_enrollment(session, username="bob.s")
    assert issue_certificate(session, enrollment.id).certificate.student_name == "bob.s"


def test_names_and_titles_are_copied_at_issue_and_never_change(session: Any) -> None:
    from eduflow.models import Course, User

    enrollment = _completed_enrollment(session, full_name="Old Name")
    serial = issue_certificate(session, enrollment.id).certificate.serial
    course = session.get(Course, enrollment.course_id)
    user = session.get(User, enrollment.student_id)
    course.title, user.full_name = "Renamed Course", "New Name"
    session.add_all([course, user])
    session.flush()
    again = issue_certificate(session, enrollment.id).certificate
    assert (again.serial, again.student_name, again.course_title) == (
        serial,
        "Old Name",
        "Practical Databases",
    )
    verified = certificates.verify_certificate(session, serial)
    assert (verified.student_name, verified.course_title) == ("Old Name", "Practical Databases")


def test_an_enrollment_that_is_not_completed_is_refused(session: Any) -> None:
    student = make_user(session, Role.student)
    enrollment = make_enrollment(session, student, make_course(session))
    with pytest.raises(Conflict) as refused:
        issue_certificate(session, enrollment.id)
    assert refused.value.problem_slug == "course-not-completed"
    with pytest.raises(NotFound):
        issue_certificate(session, 999_999)
    assert session.exec(select(Certificate)).all() == []


def test_certificates_outlive_their_course() -> None:
    """Issued and deleted in separate transactions, as in production (PostgreSQL re-checks
    every foreign key of a row inserted in the same transaction when the cascade updates it)."""
    from sqlalchemy import delete

    from eduflow.models import Course

    with session_scope() as s:
        enrollment = _completed_enrollment(s)
        serial = issue_certificate(s, enrollment.id).certificate.serial
        course_id = enrollment.course_id
    with session_scope() as s:
        s.execute(delete(Course).where(Course.id == course_id))
    with session_scope() as s:
        verified = certificates.verify_certificate(s, serial)
    assert verified.course_title == "Practical Databases" and verified.status == "valid"


def test_concurrent_issuers_on_postgres_write_one_row() -> None:
    """16 transactions (within the pool's 20 connections) issue for the same enrollment at
    once: one insert wins, every caller gets that certificate back."""
    with session_scope() as s:
        enrollment_id = _completed_enrollment(s).id
    barrier = threading.Barrier(16)
    serials: list[str] = []
    created: list[bool] = []
    errors: list[BaseException] = []

    def issue() -> None:
        try:
            barrier.wait()
            with session_scope() as s:
                issued = issue_certificate(s, enrollment_id)
                serials.append(issued.certificate.serial)
                created.append(issued.created)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=issue) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(set(serials)) == 1 and created.count(True) == 1
    with session_scope() as s:
        assert len(s.exec(select(Certificate)).all()) == 1
