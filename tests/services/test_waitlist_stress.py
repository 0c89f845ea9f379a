"""A randomized schedule of joins, leaves, enrolls, unenrolls, accepts, declines, expiries and
capacity changes on PostgreSQL, with the waitlist invariants checked after every step."""

from __future__ import annotations

import contextlib
import random
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from eduflow.db import session_scope
from eduflow.errors import EduFlowError
from eduflow.models import Course, Enrollment, WaitlistEntry
from eduflow.models._base import utcnow
from eduflow.models.users import Role
from eduflow.services import courses, enrollments, waitlist
from eduflow.services.permissions import OPERATOR, Principal
from tests.api.test_waitlist_rush import check_invariants
from tests.factories import make_course, make_user


def _principal(user: Any) -> Principal:
    return Principal(id=user.id, username=user.username, role=Role.student)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_schedule_keeps_capacity_order_and_counters(session: Any, seed: int) -> None:
    rng = random.Random(seed)
    course = make_course(session, capacity=3, price=rng.choice(["0.00", "12.00"]))
    students = [_principal(make_user(session, Role.student)) for _ in range(12)]
    session.commit()
    course_id = course.id
    ever_offered: list[int] = []

    def act(name: str) -> None:
        student = rng.choice(students)
        with session_scope() as s:
            if name == "enroll":
                enrollments.enroll_student(s, student, course_id)
            elif name == "join":
                waitlist.join_waitlist(s, student, course_id)
            elif name == "unenroll":
                ids = (
                    s.execute(
                        select(Enrollment.id).where(
                            Enrollment.course_id == course_id,
                            Enrollment.status.in_(("active", "pending")),
                        )
                    )
                    .scalars()
                    .all()
                )
                if ids:
                    enrollments.cancel_enrollment(s, OPERATOR, rng.choice(ids))
            elif name in ("accept", "decline", "leave", "expire_one"):
                entries = (
                    s.execute(
                        select(WaitlistEntry).where(
                            WaitlistEntry.course_id == course_id,
                            WaitlistEntry.status.in_(
                                ("offered",) if name != "leave" else ("offered", "waiting")
                            ),
                        )
                    )
                    .scalars()
                    .all()
                )
                if not entries:
                    return
                entry = rng.choice(entries)
                owner = next(p for p in students if p.id == entry.student_id)
                entry_id = entry.id
                s.expunge_all()
                if name == "decline":
                    waitlist.decline_offer(s, owner, entry_id)
                elif name == "leave":
                    waitlist.leave_waitlist(s, owner, entry_id)
                elif name == "expire_one":
                    s.execute(
                        update(WaitlistEntry)
                        .where(WaitlistEntry.id == entry_id)
                        .values(offer_expires_at=utcnow() - timedelta(seconds=1))
                    )
                    waitlist.expire_offers(s)
                else:
                    s.rollback()
                    waitlist.accept_offer(owner, entry_id)
            elif name == "capacity":
                current = s.get(Course, course_id)
                held = current.seats_taken + current.offers_open
                courses.update_course(
                    s, OPERATOR, course_id, {"capacity": max(1, held + rng.randint(-1, 2))}
                )

    # Start full, with a line, so that every kind of step has something to act on.
    for student in students[:3]:
        with session_scope() as s:
            enrollments.enroll_student(s, student, course_id)
    for student in students[3:7]:
        with session_scope() as s:
            waitlist.join_waitlist(s, student, course_id)
    actions = ["enroll", "join", "join", "unenroll", "unenroll", "accept", "accept", "decline"]
    actions += ["leave", "expire_one", "expire_one", "capacity"]
    for _step in range(120):
        name = rng.choice(actions)
        # Refusals (full, already enrolled, on the list, not offered) change nothing.
        with contextlib.suppress(EduFlowError):
            act(name)
        state = check_invariants(session, course_id)
        ever_offered += [
            e.id for e in state["by_status"].get("offered", []) if e.id not in ever_offered
        ]
    # Offers went out in join order: every entry ever offered joined before every entry
    # that was never offered and is still waiting.
    state = check_invariants(session, course_id)
    waiting = [e.id for e in state["by_status"].get("waiting", [])]
    assert not waiting or not ever_offered or max(ever_offered) < min(waiting)
    # The schedule really went through offers, accepts and expiries (not a vacuous run).
    assert len(ever_offered) >= 3
    assert "accepted" in state["by_status"]
    assert {"declined", "expired"} & set(state["by_status"])
