"""The seat rules are written once (``services.seats``): both ways of enrolling write the same
rows and cause the same follow-ups, and every release of seats goes through ``seats_freed``."""

from __future__ import annotations

import pathlib
import re
from typing import Any

import pytest
from sqlalchemy import select

from eduflow.db import autocommit_connection, session_scope
from eduflow.logging import bind_context, clear_context
from eduflow.models import Course, Enrollment, OutboxJob
from eduflow.models.users import Role
from eduflow.services import courses, enrollments, seats
from eduflow.services.permissions import OPERATOR, Principal
from tests.factories import make_course, make_enrollment, make_user


def _principal(user: Any) -> Principal:
    return Principal(id=user.id, username=user.username, role=Role(user.role))


def _what_was_written(course_id: int, enrollment_id: int) -> dict[str, Any]:
    with session_scope(read_only=True) as s:
        row = s.get(Enrollment, enrollment_id)
        job = s.execute(
            select(OutboxJob).where(OutboxJob.args["enrollment_id"].as_integer() == enrollment_id)
        ).scalar_one()
        course = s.get(Course, course_id)
        assert row is not None and course is not None
        return {
            "status": row.status,
            "confirmed": row.confirmed_at is not None,
            "confirmed_at_is_created_at": row.confirmed_at in (None, row.created_at),
            "updated_at_is_created_at": row.updated_at == row.created_at,
            "job": (job.job_name, job.args, job.queue, job.request_id, job.attempts),
            "job_dated_like_enrollment": job.created_at == row.created_at,
            "seats_taken": course.seats_taken,
        }


@pytest.mark.parametrize("price", ["0", "12.50"])
def test_both_ways_of_enrolling_write_the_same_rows(session: Any, price: str) -> None:
    from eduflow.cache.generations import course_gen_key
    from eduflow.cache.health import get_cache_store

    one, other = make_course(session, price=price), make_course(session, price=price)
    student = make_user(session)
    session.commit()
    actor = _principal(student)
    store = get_cache_store()
    before = store.mget(course_gen_key(one.id), course_gen_key(other.id))

    bind_context(request_id="req-parity")
    try:
        with autocommit_connection() as connection:
            fast = enrollments.enroll_in_one_statement(connection, actor, one.id)
        with session_scope() as s:
            slow = enrollments.enroll_student(s, actor, other.id)
    finally:
        clear_context()
    assert fast is not None
    # The answers agree field by field (ids, course and timestamps aside).
    skip = {"id", "course", "course_title", "created_at", "updated_at", "confirmed_at"}
    assert fast.model_dump(exclude=skip) == slow.model_dump(exclude=skip)
    assert (fast.confirmed_at is None) == (slow.confirmed_at is None)
    written_fast = _what_was_written(one.id, fast.id)
    written_slow = _what_was_written(other.id, slow.id)
    for written, enrollment_id in ((written_fast, fast.id), (written_slow, slow.id)):
        assert written["job"][1] == {"enrollment_id": enrollment_id}
        written["job"] = (written["job"][0], *written["job"][2:])
    assert written_fast == written_slow
    assert written_fast["status"] == ("active" if price == "0" else "pending")
    # What follows: both courses' cached representations were retired after the commit.
    after = store.mget(course_gen_key(one.id), course_gen_key(other.id))
    assert after[0] != before[0] and after[1] != before[1]


def test_every_release_of_seats_goes_through_seats_freed(
    session: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    freed: list[tuple[int, int]] = []
    real = seats.seats_freed

    def spy(s: Any, course_id: int, count: int = 0) -> None:
        freed.append((course_id, count))
        real(s, course_id, count)

    monkeypatch.setattr(seats, "seats_freed", spy)
    from datetime import timedelta

    from eduflow.models._base import utcnow

    course = make_course(session, capacity=2, price=10)
    kept, cancelled = make_user(session), make_user(session)
    old = utcnow() - timedelta(days=3)
    make_enrollment(session, kept, course, status="pending", created_at=old)
    gone = make_enrollment(session, cancelled, course, status="active")
    session.flush()
    enrollments.cancel_enrollment(session, OPERATOR, gone.id)
    assert enrollments.expire_abandoned_enrollments(session, timedelta(days=1)) == 1
    courses.update_course(session, OPERATOR, course.id, {"capacity": 5})
    courses.update_course(session, OPERATOR, course.id, {"capacity": 4})  # less room: not freed
    assert freed == [(course.id, 1), (course.id, 1), (course.id, 0)]
    session.expire_all()
    assert session.get(Course, course.id).seats_taken == 0


def test_seat_counts_change_only_in_the_seat_rules() -> None:
    """A second place that moves ``seats_taken`` would be a twin of the seat rules."""
    package = pathlib.Path(seats.__file__).parent.parent
    moving = re.compile(r"seats_taken\s*=\s*col\(Course\.seats_taken\)|seats_taken\s*[+-]=")
    offenders = [
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if path.name != "seats.py" and moving.search(path.read_text())
    ]
    assert offenders == []
