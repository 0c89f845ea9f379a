"""``eduflow admin waitlist``: list a course's line and promote it — same rules as over HTTP."""

from __future__ import annotations

import json
from typing import Any

from eduflow.db import session_scope
from eduflow.models import Course
from eduflow.models.users import Role
from eduflow.services import enrollments, waitlist
from eduflow.services.permissions import Principal
from tests.factories import make_course, make_user


def _line(session: Any, waiting: int) -> tuple[int, list[Principal]]:
    course = make_course(session, capacity=1)
    people = [make_user(session, Role.student) for _ in range(waiting + 1)]
    session.commit()
    principals = [Principal(id=u.id, username=u.username, role=Role.student) for u in people]
    with session_scope() as s:
        enrollments.enroll_student(s, principals[0], course.id)
    for p in principals[1:]:
        with session_scope() as s:
            waitlist.join_waitlist(s, p, course.id)
    return course.id, principals


def test_list_shows_positions_and_deadlines_as_json_and_table(session: Any, cli: Any) -> None:
    course_id, people = _line(session, 3)
    result = cli("admin", "waitlist", "list", "--course", str(course_id), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["count"] == 3
    assert [r["position"] for r in data["results"]] == [1, 2, 3]
    assert [r["student"] for r in data["results"]] == [p.username for p in people[1:]]
    assert set(data["results"][0]) == {
        "id", "course", "student", "status", "position", "created_at", "offer_expires_at"
    }  # fmt: skip
    table = cli("admin", "waitlist", "list", "--course", str(course_id))
    assert table.exit_code == 0 and people[1].username in table.stdout
    waiting = cli("admin", "waitlist", "list", "--course", str(course_id), "--status", "offered")
    assert waiting.exit_code == 0


def test_promote_offers_free_seats_and_errors_are_one_line(session: Any, cli: Any) -> None:
    course_id, _ = _line(session, 2)
    nothing = cli("admin", "waitlist", "promote", "--course", str(course_id), "--json")
    assert nothing.exit_code == 0 and json.loads(nothing.stdout)["offered"] == []
    # Seats that appear without passing through the seat rules (e.g. a repaired counter)
    # are offered by promote.
    with session_scope() as s:
        course = s.get(Course, course_id)
        course.capacity = 2
        s.add(course)
    result = cli("admin", "waitlist", "promote", "--course", str(course_id), "--json")
    assert result.exit_code == 0, result.output
    offered = json.loads(result.stdout)["offered"]
    assert len(offered) == 1
    listed = json.loads(
        cli("admin", "waitlist", "list", "--course", str(course_id), "--json").stdout
    )
    assert [r["status"] for r in listed["results"]] == ["offered", "waiting"]
    assert listed["results"][0]["offer_expires_at"] is not None

    missing = cli("admin", "waitlist", "list", "--course", "999999")
    assert missing.exit_code == 1 and "999999" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    bad = cli("admin", "waitlist", "list", "--course", str(course_id), "--status", "nope")
    assert bad.exit_code == 2
