"""Course and lesson rules at the service level, as the CLI (acting as OPERATOR) uses them."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from eduflow.errors import Forbidden, Invalid, NotFound, Unauthorized
from eduflow.models import Course, Enrollment, Lesson
from eduflow.models.users import Role
from eduflow.services import courses, lessons
from eduflow.services.permissions import OPERATOR, Principal
from tests.factories import make_course, make_enrollment, make_lesson, make_user


def as_principal(user: Any) -> Principal:
    return Principal(id=user.id, username=user.username, role=Role(user.role))


def test_create_validates_mappings_like_the_api(session: Any) -> None:
    teacher = as_principal(make_user(session, Role.instructor))
    course = courses.create_course(session, teacher, {"title": "  Cli course ", "price": "7.5"})
    assert (
        course.title == "Cli course" and course.price == "7.50" and course.owner == teacher.username
    )
    assert session.get(Course, course.id).price == Decimal("7.50")
    with pytest.raises(Invalid) as info:
        courses.create_course(session, teacher, {"title": "x", "price": "-1", "colour": "red"})
    assert {e["field"] for e in info.value.errors or []} == {"title", "price", "colour"}
    with pytest.raises(Forbidden):
        courses.create_course(session, as_principal(make_user(session)), {"title": "Nope"})
    with pytest.raises(Unauthorized):
        courses.update_course(session, None, course.id, {"title": "Anon"})  # type: ignore[arg-type]


def test_operator_creates_for_an_owner_and_transfers(session: Any) -> None:
    grace = make_user(session, Role.instructor, username="grace")
    alan = make_user(session, Role.instructor, username="alan")
    student = make_user(session, username="ada")
    course = courses.create_course(session, OPERATOR, {"title": "Owned"}, owner=grace)
    assert course.owner == "grace"
    with pytest.raises(Invalid):
        courses.create_course(session, OPERATOR, {"title": "Owned"}, owner=student)
    moved = courses.transfer_course(session, OPERATOR, course.id, "alan")
    assert moved.owner == "alan" and session.get(Course, course.id).owner_id == alan.id
    for bad in ("ada", "nobody", 10**6):
        with pytest.raises(Invalid) as info:
            courses.transfer_course(session, OPERATOR, course.id, bad)
        assert info.value.errors and info.value.errors[0]["field"] == "owner"
    with pytest.raises(NotFound):  # grace no longer owns the draft: she cannot see it
        courses.transfer_course(session, as_principal(grace), course.id, "grace")


def test_publish_unpublish_and_visibility(session: Any) -> None:
    owner = make_user(session, Role.instructor)
    course = make_course(session, owner=owner, is_published=False)
    student = as_principal(make_user(session))
    with pytest.raises(NotFound):
        courses.course_detail(session, student, course.id)
    assert courses.publish_course(session, OPERATOR, course.id).is_published is True
    assert courses.course_detail(session, student, course.id).id == course.id
    assert courses.unpublish_course(session, as_principal(owner), course.id).is_published is False
    assert courses.list_courses(session, student)[0] == 0
    assert courses.list_courses(session, OPERATOR)[0] == 1


def test_delete_reports_what_went_with_the_course(session: Any) -> None:
    course = make_course(session)
    for _ in range(3):
        make_lesson(session, course)
    make_enrollment(session, make_user(session), course)
    make_enrollment(session, make_user(session), course, status="pending")
    report = courses.delete_course(session, OPERATOR, course.id)
    assert (report.lessons, report.enrollments) == (3, 2)
    session.expire_all()
    assert session.get(Course, course.id) is None
    assert session.query(Lesson).count() == 0 and session.query(Enrollment).count() == 0
    with pytest.raises(NotFound):
        courses.delete_course(session, OPERATOR, course.id)


def test_lesson_counter_follows_writes(session: Any) -> None:
    course = make_course(session)
    first = lessons.create_lesson(session, OPERATOR, {"course": course.id, "title": "One"})
    second = lessons.create_lesson(session, OPERATOR, {"course": course.id, "title": "Two"})
    assert (first.order_index, second.order_index) == (1, 2)
    lessons.delete_lesson(session, OPERATOR, first.id)
    session.expire_all()
    assert session.get(Course, course.id).lessons_count == 1
    with pytest.raises(NotFound):
        lessons.update_lesson(session, OPERATOR, first.id, {"title": "Gone"})
