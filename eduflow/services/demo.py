"""Demo data: realistic, deterministic accounts, courses, lessons and enrollments in bulk.

What the rows contain is ``demo_content``; how they are written fast is ``demo_load``.
Every demo account shares one precomputed bcrypt hash, and the maintained counters
(``seats_taken``, ``lessons_count``) are decided before any row is written, so the seeded
catalogue is consistent with what the services would have produced. Demo enrollments
count as already e-mailed: seeding never floods the outbox.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, select, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel

from eduflow.cache.catalog import invalidate_catalog
from eduflow.db import autocommit_connection, long_work
from eduflow.errors import Conflict, Invalid
from eduflow.models import Course, Enrollment, Lesson, LessonProgress, User
from eduflow.models._base import utcnow
from eduflow.models.enrollments import EnrollmentStatus
from eduflow.models.users import Role
from eduflow.security import hash_password
from eduflow.services.demo_content import (
    COURSE_COLUMNS,
    ENROLLMENT_COLUMNS,
    LESSON_COLUMNS,
    USER_COLUMNS,
    course_plans,
    course_rows,
    enrollment_rows,
    lesson_rows,
    user_rows,
    with_enrollment_counts,
)
from eduflow.services.demo_load import (
    indexes_rebuilt_after,
    is_postgres,
    load,
    load_copy_data,
    reserve_ids,
)
from eduflow.services.demo_progress import COUNTER_COLUMNS, PROGRESS_COLUMNS, DemoProgress

DEMO_PASSWORD = "eduflow-demo-pass"
ADMIN_USERNAME = "demo_admin"
MAX_COURSES = 2_000_000
MAX_STUDENTS = 5_000_000
MAX_LESSONS_PER_COURSE = 200
MAX_ENROLLMENTS = 50_000_000

ProgressFn = Callable[[str, int], None]


@dataclass(frozen=True, slots=True)
class DemoSpec:
    """How much demo data to make; the same spec and seed always give the same data."""

    courses: int = 1000
    students: int = 10_000
    lessons_per_course: int = 8
    enrollments: int = 50_000
    seed: int = 42
    instructors: int | None = None  # default: one per 20 courses
    password: str = DEMO_PASSWORD

    @property
    def instructor_count(self) -> int:
        """Instructors to create (at least one when there are courses)."""
        if self.instructors is not None:
            return self.instructors
        return max(1, -(-self.courses // 20)) if self.courses else 0

    def validate(self) -> None:
        """Reject sizes that are negative or absurd, naming the option."""
        limits = {
            "courses": (self.courses, MAX_COURSES),
            "students": (self.students, MAX_STUDENTS),
            "lessons_per_course": (self.lessons_per_course, MAX_LESSONS_PER_COURSE),
            "enrollments": (self.enrollments, MAX_ENROLLMENTS),
            "instructors": (self.instructor_count, MAX_COURSES),
        }
        for name, (value, limit) in limits.items():
            if not 0 <= value <= limit:
                raise Invalid.field(name, f"must be between 0 and {limit}")
        if self.courses and not self.instructor_count:
            raise Invalid.field("instructors", "courses need at least one instructor")

    @property
    def total_rows(self) -> int:
        """Upper bound of rows to insert (for a progress bar)."""
        return (
            1
            + self.instructor_count
            + self.students
            + self.courses
            + self.courses * self.lessons_per_course
            + self.enrollments
        )


@dataclass(slots=True)
class DemoResult:
    """What was seeded, and how to log in."""

    admins: int = 0
    instructors: int = 0
    students: int = 0
    courses: int = 0
    published_courses: int = 0
    lessons: int = 0
    enrollments: int = 0
    active_enrollments: int = 0
    pending_enrollments: int = 0
    completed_enrollments: int = 0
    progress_rows: int = 0
    password: str = DEMO_PASSWORD
    logins: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Stable keys for ``--json``."""
        return {
            "admins": self.admins,
            "instructors": self.instructors,
            "students": self.students,
            "courses": self.courses,
            "published_courses": self.published_courses,
            "lessons": self.lessons,
            "enrollments": self.enrollments,
            "active_enrollments": self.active_enrollments,
            "pending_enrollments": self.pending_enrollments,
            "completed_enrollments": self.completed_enrollments,
            "progress_rows": self.progress_rows,
            "password": self.password,
            "logins": self.logins,
        }


def instructor_username(n: int) -> str:
    """The username of demo instructor ``n`` (from 1)."""
    return f"demo_instructor_{n:03d}"


def student_username(n: int) -> str:
    """The username of demo student ``n`` (from 1)."""
    return f"demo_student_{n:05d}"


def seed_demo(session: Session, spec: DemoSpec, progress: ProgressFn | None = None) -> DemoResult:
    """Insert a consistent demo platform in the caller's transaction; refuses to seed twice.

    Rows are generated as streams and loaded with ``COPY`` on PostgreSQL (multi-row
    inserts on SQLite), with the secondary indexes built once at the end: memory grows
    with the courses only (their plans), never with enrollments or progress rows."""
    spec.validate()
    report = progress or (lambda _stage, _n: None)
    with long_work(session):  # one COPY per table and one index build per index
        return _seed(session, spec, report)


def _seed(session: Session, spec: DemoSpec, report: ProgressFn) -> DemoResult:
    users, courses = _table(User), _table(Course)
    first_user = reserve_ids(session, users, 1 + spec.instructor_count + spec.students)
    if session.scalar(select(users.c.id).where(users.c.username == ADMIN_USERNAME)) is not None:
        raise _already_seeded()
    rng = random.Random(spec.seed)
    now = utcnow().replace(microsecond=0)
    result = DemoResult(password=spec.password)
    password_hash = hash_password(spec.password)
    instructor_names = [instructor_username(i + 1) for i in range(spec.instructor_count)]
    instructor_ids = range(first_user + 1, first_user + 1 + len(instructor_names))
    student_ids = range(instructor_ids.stop, instructor_ids.stop + spec.students)

    def accounts() -> Iterator[tuple[Any, ...]]:
        yield from user_rows(
            first_user, [ADMIN_USERNAME], Role.admin.value, password_hash, rng, now
        )
        yield from user_rows(
            instructor_ids.start, instructor_names, Role.instructor.value, password_hash, rng, now
        )
        names = (student_username(i + 1) for i in range(spec.students))
        yield from user_rows(student_ids.start, names, Role.student.value, password_hash, rng, now)

    first_course = reserve_ids(session, courses, spec.courses)
    plans = course_plans(spec.courses, first_course, rng, instructor_ids, now)
    plans = with_enrollment_counts(plans, spec.enrollments, spec.students, rng)
    lessons_total = spec.courses * spec.lessons_per_course
    enrollments_total = sum(p.enrolled for p in plans)
    first_lesson = reserve_ids(session, _table(Lesson), lessons_total)
    first_enrollment = reserve_ids(session, _table(Enrollment), enrollments_total)
    learning = DemoProgress(
        random.Random(f"{spec.seed}-progress"),
        now,
        first_course,
        first_lesson,
        spec.lessons_per_course,
    )
    tables = [users, courses, _table(Lesson), _table(Enrollment), _table(LessonProgress)]
    try:
        with indexes_rebuilt_after(session, tables, report):
            load(session, users, USER_COLUMNS, accounts(), report, "users")
            load(
                session,
                courses,
                COURSE_COLUMNS,
                course_rows(plans, spec.lessons_per_course, rng, now),
                report,
                "courses",
            )
            result.lessons = load(
                session,
                _table(Lesson),
                LESSON_COLUMNS,
                lesson_rows(plans, spec.lessons_per_course, first_lesson, rng),
                report,
                "lessons",
            )
            pending = EnrollmentStatus.pending.value
            counted = _Counter(pending)
            rows = counted.watch(enrollment_rows(plans, first_enrollment, student_ids, rng, now))
            result.enrollments = load(
                session,
                _table(Enrollment),
                (*ENROLLMENT_COLUMNS, *COUNTER_COLUMNS),
                learning.with_counters(rows),
                report,
                "enrollments",
            )
            if is_postgres(session):
                load_copy_data(
                    session,
                    _table(LessonProgress),
                    PROGRESS_COLUMNS,
                    learning.progress_copy(),
                    report,
                    "progress",
                )
            else:
                load(
                    session,
                    _table(LessonProgress),
                    PROGRESS_COLUMNS,
                    learning.progress_rows(),
                    report,
                    "progress",
                )
    except IntegrityError as exc:  # SQLite: a concurrent seed won the race
        raise _already_seeded() from exc
    finally:
        learning.close()
    result.admins, result.instructors, result.students = 1, len(instructor_ids), spec.students
    result.courses = len(plans)
    result.published_courses = sum(1 for p in plans if p.is_published)
    result.pending_enrollments = counted.pending
    result.active_enrollments = result.enrollments - counted.pending
    result.completed_enrollments, result.progress_rows = learning.completed, learning.rows
    invalidate_catalog(session)
    result.logins = [{"role": Role.admin.value, "username": ADMIN_USERNAME}]
    if instructor_names:
        result.logins.append({"role": Role.instructor.value, "username": instructor_names[0]})
    if spec.students:
        result.logins.append({"role": Role.student.value, "username": student_username(1)})
    return result


class _Counter:
    """Counts the pending enrollments of a row stream as it passes."""

    def __init__(self, pending: str) -> None:
        self.pending = 0
        self._status = pending

    def watch(self, rows: Iterator[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
        for row in rows:
            if row[3] == self._status:
                self.pending += 1
            yield row


def tidy_after_seed() -> None:
    """After the seed's commit, on PostgreSQL: ``VACUUM ANALYZE`` the seeded tables so the
    planner knows their sizes and index-only scans need no table visits."""
    with autocommit_connection() as connection:
        if connection.dialect.name != "postgresql":
            return
        with long_work(connection):
            for model in (User, Course, Lesson, Enrollment, LessonProgress):
                connection.execute(text(f"VACUUM (ANALYZE) {_table(model).name}"))


def _already_seeded() -> Conflict:
    return Conflict(
        f"demo data is already present (user {ADMIN_USERNAME!r} exists); seed an empty database",
        slug="demo-already-seeded",
    )


def _table(model: type[SQLModel]) -> Table:
    table: Table = model.__table__  # type: ignore[attr-defined]
    return table
