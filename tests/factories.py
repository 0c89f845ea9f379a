"""Factories for tests: each flushes and uses unique values."""

from __future__ import annotations

import itertools
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlmodel import Session

from eduflow.models import Certificate, Course, Enrollment, Lesson, User
from eduflow.models.users import Role

DEFAULT_PASSWORD = "correct-horse-42"
_seq = itertools.count(1)


@lru_cache(maxsize=1)
def _default_hash() -> str:
    from eduflow.security import hash_password

    return hash_password(DEFAULT_PASSWORD, rounds=4)


def make_user(
    session: Session,
    role: Role | str = Role.student,
    username: str | None = None,
    email: str | None = None,
    password: str | None = None,
    **fields: Any,
) -> User:
    """A user with DEFAULT_PASSWORD unless ``password`` is given."""
    from eduflow.security import hash_password

    n = next(_seq)
    username = username or f"user{n}_{Role(role).value}"
    user = User(
        username=username,
        email=(email or f"{username}@example.com").lower(),
        password_hash=hash_password(password, rounds=4) if password else _default_hash(),
        role=Role(role).value,
        **fields,
    )
    session.add(user)
    session.flush()
    return user


def make_course(
    session: Session,
    owner: User | None = None,
    title: str | None = None,
    price: Decimal | str | int = 0,
    is_published: bool = True,
    capacity: int | None = None,
    **fields: Any,
) -> Course:
    """A course (published by default) owned by ``owner`` or a new instructor."""
    owner = owner or make_user(session, Role.instructor)
    course = Course(
        title=title or f"Course {next(_seq)}",
        price=Decimal(str(price)),
        is_published=is_published,
        capacity=capacity,
        owner_id=owner.id,  # type: ignore[arg-type]
        **fields,
    )
    session.add(course)
    session.flush()
    return course


def make_lesson(session: Session, course: Course, **fields: Any) -> Lesson:
    """A lesson at the end of ``course`` (keeps lessons_count right)."""
    course.lessons_count += 1
    fields.setdefault("order_index", course.lessons_count)
    lesson = Lesson(
        course_id=course.id,  # type: ignore[arg-type]
        title=fields.pop("title", f"Lesson {next(_seq)}"),
        content=fields.pop("content", "Lesson body"),
        **fields,
    )
    session.add_all([course, lesson])
    session.flush()
    return lesson


def make_enrollment(
    session: Session, student: User, course: Course, status: str = "active", **fields: Any
) -> Enrollment:
    """An enrollment (keeps seats_taken right)."""
    course.seats_taken += 1
    enrollment = Enrollment(
        student_id=student.id,  # type: ignore[arg-type]
        course_id=course.id,  # type: ignore[arg-type]
        status=status,
        **fields,
    )
    session.add_all([course, enrollment])
    session.flush()
    return enrollment


def make_certificate(session: Session, student: User, course: Course, **fields: Any) -> Certificate:
    """A certificate as the issuer writes it (student_name/course_title copied now)."""
    from eduflow.services.certificates import new_serial

    certificate = Certificate(
        serial=fields.pop("serial", new_serial()),
        student_id=student.id,
        course_id=course.id,
        student_name=fields.pop("student_name", student.username),
        course_title=fields.pop("course_title", course.title),
        **fields,
    )
    session.add(certificate)
    session.flush()
    return certificate
