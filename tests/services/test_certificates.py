"""Issuing certificates: serials, the printed name, refusing what is not completed."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import select

from eduflow.errors import Conflict, NotFound
from eduflow.models import Certificate
from eduflow.models.users import Role
from eduflow.services.certificates import issue_certificate, new_serial, student_name_of
from tests.factories import make_course, make_enrollment, make_user

COMPLETED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_serials_are_url_safe_and_carry_at_least_128_random_bits() -> None:
    serials = {new_serial() for _ in range(2000)}
    assert len(serials) == 2000
    for serial in serials:
        assert re.fullmatch(r"[A-Za-z0-9_-]+", serial)
        raw = base64.urlsafe_b64decode(serial + "=" * (-len(serial) % 4))
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


def test_an_enrollment_that_is_not_completed_is_refused(session: Any) -> None:
    student = make_user(session, Role.student)
    enrollment = make_enrollment(session, student, make_course(session))
    with pytest.raises(Conflict) as refused:
        issue_certificate(session, enrollment.id)
    assert refused.value.problem_slug == "course-not-completed"
    with pytest.raises(NotFound):
        issue_certificate(session, 999_999)
    assert session.exec(select(Certificate)).all() == []
