"""Demo data: realistic, deterministic accounts, courses, lessons and enrollments in bulk.

Rows go in through SQLAlchemy Core multi-row inserts on the models' tables (not one ORM
object at a time), every demo account shares one precomputed bcrypt hash, and the
maintained counters (``seats_taken``, ``lessons_count``) are computed while generating,
so the seeded catalogue is consistent with what the services would have produced.
Demo enrollments count as already e-mailed: seeding never floods the outbox.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, insert, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel

from eduflow.cache.catalog import invalidate_catalog
from eduflow.errors import Conflict, Invalid
from eduflow.models import Course, Enrollment, Lesson, User
from eduflow.models._base import utcnow
from eduflow.models.enrollments import EnrollmentStatus
from eduflow.models.users import Role
from eduflow.security import hash_password
from eduflow.services.demo_progress import seed_progress

DEMO_PASSWORD = "eduflow-demo-pass"
DEMO_EMAIL_DOMAIN = "example.com"
ADMIN_USERNAME = "demo_admin"
BATCH_SIZE = 2000
MAX_COURSES = 100_000
MAX_STUDENTS = 1_000_000
MAX_LESSONS_PER_COURSE = 200
MAX_ENROLLMENTS = 5_000_000

ProgressFn = Callable[[str, int], None]

_TOPIC_NAMES = (
    "Python|Data Analysis|Machine Learning|Web Development|SQL|PostgreSQL|JavaScript|"
    "TypeScript|React|Docker|Kubernetes|Linux|Git|Statistics|Photography|"
    "Watercolour Painting|Public Speaking|Project Management|Digital Marketing|"
    "UX Design|Spanish|French|Japanese|Guitar|Piano|Music Theory|Creative Writing|"
    "Personal Finance|Accounting|Negotiation|Nutrition|Yoga|Cybersecurity|"
    "Cloud Architecture|Rust|Go|Mobile Apps|Game Design|3D Modelling|Excel"
)
_TOPICS = tuple(_TOPIC_NAMES.split("|"))
_TITLE_PATTERNS = (
    "Introduction to {topic}",
    "{topic} for Beginners",
    "{topic} in Practice",
    "Mastering {topic}",
    "{topic}: From Zero to Confident",
    "Advanced {topic}",
    "{topic} Essentials",
    "Hands-on {topic}",
    "The Complete {topic} Course",
    "{topic} Bootcamp",
    "Practical {topic} for Professionals",
    "{topic} Weekend Workshop",
)
_AUDIENCES = (
    "complete beginners",
    "working professionals",
    "students who know the basics",
    "career changers",
    "team leads",
    "hobbyists",
)
_OUTCOMES = (
    "build a portfolio project you can show",
    "understand the core ideas without jargon",
    "apply what you learn at work the next day",
    "prepare for a certification exam",
    "avoid the classic beginner mistakes",
    "work confidently on real-world problems",
)
_LESSON_PATTERNS = (
    "Welcome and course overview",
    "Setting up your environment",
    "Core concepts of {topic}",
    "Your first {topic} exercise",
    "Common patterns in {topic}",
    "Working with real data",
    "Debugging and troubleshooting",
    "Best practices",
    "A guided project, part {n}",
    "Going further with {topic}",
    "Quiz and review",
    "Wrap-up and next steps",
)
_PRICES = ("9.90", "14.90", "19.90", "29.00", "39.90", "49.00", "79.99", "99.00", "149.00")
_CAPACITIES = (15, 20, 25, 30, 50, 80, 100, 200, 500)


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
    """Insert a consistent demo platform in the caller's transaction; refuses to seed twice."""
    spec.validate()
    users = _table(User)
    if session.scalar(select(users.c.id).where(users.c.username == ADMIN_USERNAME)) is not None:
        raise _already_seeded()
    rng = random.Random(spec.seed)
    now = utcnow().replace(microsecond=0)
    report = progress or (lambda _stage, _n: None)
    result = DemoResult(password=spec.password)
    password_hash = hash_password(spec.password)

    try:  # a concurrent seed loses here, on the unique username, before inserting anything
        _insert_users(session, Role.admin, [ADMIN_USERNAME], password_hash, rng, now, report)
    except IntegrityError as exc:
        raise _already_seeded() from exc
    instructor_names = [instructor_username(i + 1) for i in range(spec.instructor_count)]
    instructor_ids = _insert_users(
        session, Role.instructor, instructor_names, password_hash, rng, now, report
    )
    student_names = [student_username(i + 1) for i in range(spec.students)]
    student_ids = _insert_users(
        session, Role.student, student_names, password_hash, rng, now, report
    )
    result.admins, result.instructors, result.students = 1, len(instructor_ids), len(student_ids)

    courses, topics = _course_rows(spec, rng, instructor_ids, now)
    counts = _enrollment_counts(spec, rng, courses, len(student_ids))
    for row, count in zip(courses, counts, strict=True):
        row["seats_taken"] = count
        row["lessons_count"] = spec.lessons_per_course
    course_ids = _insert(session, _table(Course), courses, report, "courses", returning=True)
    result.courses = len(course_ids)
    result.published_courses = sum(1 for row in courses if row["is_published"])

    lessons = _lesson_rows(spec, rng, courses, topics, course_ids)
    result.lessons = len(_insert(session, _table(Lesson), lessons, report, "lessons"))

    enrollments = _enrollment_rows(rng, courses, course_ids, counts, student_ids, now)
    _insert(session, _table(Enrollment), enrollments, report, "enrollments")
    result.enrollments = len(enrollments)
    result.pending_enrollments = sum(
        1 for row in enrollments if row["status"] == EnrollmentStatus.pending.value
    )
    result.active_enrollments = result.enrollments - result.pending_enrollments
    learning = seed_progress(session, rng, now, report)
    result.completed_enrollments, result.progress_rows = learning.completed, learning.rows

    invalidate_catalog(session)
    result.logins = [{"role": Role.admin.value, "username": ADMIN_USERNAME}]
    if instructor_names:
        result.logins.append({"role": Role.instructor.value, "username": instructor_names[0]})
    if student_names:
        result.logins.append({"role": Role.student.value, "username": student_names[0]})
    return result


def _already_seeded() -> Conflict:
    return Conflict(
        f"demo data is already present (user {ADMIN_USERNAME!r} exists); seed an empty database",
        slug="demo-already-seeded",
    )


def _table(model: type[SQLModel]) -> Table:
    table: Table = model.__table__  # type: ignore[attr-defined]
    return table


def _batches(rows: Sequence[dict[str, Any]]) -> Iterator[Sequence[dict[str, Any]]]:
    for start in range(0, len(rows), BATCH_SIZE):
        yield rows[start : start + BATCH_SIZE]


def _insert(
    session: Session,
    table: Table,
    rows: Sequence[dict[str, Any]],
    report: ProgressFn,
    stage: str,
    *,
    returning: bool = False,
) -> list[int]:
    """Multi-row inserts in batches; the new ids, in row order, when ``returning``."""
    ids: list[int] = []
    for batch in _batches(rows):
        if returning:
            stmt = insert(table).returning(table.c.id, sort_by_parameter_order=True)
            ids.extend(session.execute(stmt, list(batch)).scalars())
        else:
            session.execute(insert(table), list(batch))
            ids.extend(range(len(batch)))
        report(stage, len(batch))
    return ids


def _insert_users(
    session: Session,
    role: Role,
    usernames: Sequence[str],
    password_hash: str,
    rng: random.Random,
    now: datetime,
    report: ProgressFn | None = None,
) -> list[int]:
    rows = [
        {
            "username": name,
            "email": f"{name}@{DEMO_EMAIL_DOMAIN}",
            "password_hash": password_hash,
            "role": role.value,
            "is_active": True,
            "email_verified": True,  # demo addresses cannot receive mail
            "date_joined": now
            - timedelta(days=rng.randint(30, 730), seconds=rng.randint(0, 86399)),
        }
        for name in usernames
    ]
    return _insert(
        session,
        _table(User),
        rows,
        report or (lambda _s, _n: None),
        "users",
        returning=True,
    )


def _course_rows(
    spec: DemoSpec, rng: random.Random, instructor_ids: Sequence[int], now: datetime
) -> tuple[list[dict[str, Any]], list[str]]:
    rows: list[dict[str, Any]] = []
    topics: list[str] = []
    for _ in range(spec.courses):
        topic = rng.choice(_TOPICS)
        topics.append(topic)
        title = rng.choice(_TITLE_PATTERNS).format(topic=topic)
        audience, outcome = rng.choice(_AUDIENCES), rng.choice(_OUTCOMES)
        description = (
            f"A course on {topic} for {audience}, in {spec.lessons_per_course} lessons. "
            f"Short videos, exercises and a final project help you {outcome}."
        )
        created = now - timedelta(days=rng.randint(1, 365), seconds=rng.randint(0, 86399))
        rows.append(
            {
                "title": title,
                "description": description,
                "price": Decimal("0.00") if rng.random() < 0.3 else Decimal(rng.choice(_PRICES)),
                "is_published": rng.random() < 0.85,
                "capacity": None if rng.random() < 0.4 else rng.choice(_CAPACITIES),
                "owner_id": rng.choice(instructor_ids),
                "created_at": created,
                "updated_at": min(created + timedelta(days=rng.randint(0, 20)), now),
            }
        )
    return rows, topics


def _enrollment_counts(
    spec: DemoSpec, rng: random.Random, courses: Sequence[dict[str, Any]], students: int
) -> list[int]:
    """Enrollments per course: popularity-weighted, never above capacity, published only."""
    counts = [0] * len(courses)
    caps = [
        min(row["capacity"] or students, students) if row["is_published"] else 0 for row in courses
    ]
    remaining = min(spec.enrollments, sum(caps))
    # A long-tailed popularity, as real catalogues have: a few hits, many quiet courses.
    weights = [rng.paretovariate(1.2) for _ in courses]
    open_courses = [i for i, cap in enumerate(caps) if cap > 0]
    while remaining > 0 and open_courses:
        picks = rng.choices(open_courses, [weights[i] for i in open_courses], k=remaining)
        remaining = 0
        for i in picks:
            if counts[i] < caps[i]:
                counts[i] += 1
            else:
                remaining += 1
        open_courses = [i for i in open_courses if counts[i] < caps[i]]
    return counts


def _lesson_rows(
    spec: DemoSpec,
    rng: random.Random,
    courses: Sequence[dict[str, Any]],
    topics: Sequence[str],
    course_ids: Sequence[int],
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for row, topic, course_id in zip(courses, topics, course_ids, strict=True):
        for n in range(1, spec.lessons_per_course + 1):
            title = _LESSON_PATTERNS[(n - 1) % len(_LESSON_PATTERNS)].format(topic=topic, n=n)
            rows.append(
                {
                    "course_id": course_id,
                    "title": f"{n}. {title}",
                    "content": (
                        f"In this lesson on {topic} we cover {title.lower()}. "
                        "Watch the video, then try the exercise before the next lesson."
                    ),
                    "duration_min": rng.choice((5, 8, 10, 12, 15, 20, 25, 30, 45)),
                    "order_index": n,
                    "created_at": row["created_at"],
                    "updated_at": row["created_at"],
                }
            )
    return rows


def _enrollment_rows(
    rng: random.Random,
    courses: Sequence[dict[str, Any]],
    course_ids: Sequence[int],
    counts: Sequence[int],
    student_ids: Sequence[int],
    now: datetime,
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for row, course_id, count in zip(courses, course_ids, counts, strict=True):
        if not count:
            continue
        paid = row["price"] > 0
        for index in rng.sample(range(len(student_ids)), count):
            # Paid courses keep some recent, unconfirmed (pending) enrollments; recent so the
            # abandonment job does not expire them the moment a worker starts.
            pending = paid and rng.random() < 0.2
            if pending:
                created = now - timedelta(minutes=rng.randint(1, 600))
            else:
                age = (now - row["created_at"]).total_seconds()
                created = row["created_at"] + timedelta(seconds=rng.uniform(0, max(age, 1)))
            created = created.replace(microsecond=0)
            rows.append(
                {
                    "student_id": student_ids[index],
                    "course_id": course_id,
                    "status": (
                        EnrollmentStatus.pending if pending else EnrollmentStatus.active
                    ).value,
                    "created_at": created,
                    "updated_at": created,
                    "confirmed_at": created if paid and not pending else None,
                    "email_sent_at": created,
                }
            )
    return rows
