"""What the demo platform contains: deterministic rows of users, courses, lessons and
enrollments, generated as streams (one course's rows at a time) so that memory stays
bounded whatever the size.

Rows are tuples in the column order of ``*_COLUMNS``, with explicit ids reserved by the
loader, so that a row stream can go straight into ``COPY``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from eduflow.models.enrollments import EnrollmentStatus

DEMO_EMAIL_DOMAIN = "example.com"

_TOPIC_NAMES = (
    "Python|Data Analysis|Machine Learning|Web Development|SQL|PostgreSQL|JavaScript|"
    "TypeScript|React|Docker|Kubernetes|Linux|Git|Statistics|Photography|"
    "Watercolour Painting|Public Speaking|Project Management|Digital Marketing|"
    "UX Design|Spanish|French|Japanese|Guitar|Piano|Music Theory|Creative Writing|"
    "Personal Finance|Accounting|Negotiation|Nutrition|Yoga|Cybersecurity|"
    "Cloud Architecture|Rust|Go|Mobile Apps|Game Design|3D Modelling|Excel"
)
TOPICS = tuple(_TOPIC_NAMES.split("|"))
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
_PRICES = tuple(
    Decimal(p) for p in ("9.90", "14.90", "19.90", "29.00", "39.90", "49.00", "79.99", "99.00")
)
_CAPACITIES = (15, 20, 25, 30, 50, 80, 100, 200, 500)
_FREE = Decimal("0.00")

USER_COLUMNS = (
    "id",
    "username",
    "email",
    "password_hash",
    "role",
    "is_active",
    "email_verified",
    "date_joined",
)
COURSE_COLUMNS = (
    "id",
    "title",
    "description",
    "price",
    "is_published",
    "capacity",
    "seats_taken",
    "lessons_count",
    "owner_id",
    "created_at",
    "updated_at",
)
LESSON_COLUMNS = (
    "id",
    "course_id",
    "title",
    "content",
    "duration_min",
    "order_index",
    "created_at",
    "updated_at",
)
ENROLLMENT_COLUMNS = (
    "id",
    "student_id",
    "course_id",
    "status",
    "created_at",
    "updated_at",
    "confirmed_at",
    "email_sent_at",
)


def user_rows(
    first_id: int,
    usernames: Iterable[str],
    role: str,
    password_hash: str,
    rng: random.Random,
    now: datetime,
) -> Iterator[tuple[Any, ...]]:
    """Accounts joined within the last two years, all sharing one password hash."""
    for offset, name in enumerate(usernames):
        joined = now - timedelta(days=rng.randint(30, 730), seconds=rng.randint(0, 86399))
        email = f"{name}@{DEMO_EMAIL_DOMAIN}"
        yield (
            first_id + offset,
            name,
            email,
            password_hash,
            role,
            True,
            True,
            joined,
        )  # verified: demo addresses get no mail


@dataclass(frozen=True, slots=True)
class CoursePlan:
    """What is decided about one course before any row is written."""

    id: int
    topic: str
    price: Decimal
    is_published: bool
    capacity: int | None
    owner_id: int
    created_at: datetime
    enrolled: int = 0


def course_plans(
    count: int,
    first_id: int,
    rng: random.Random,
    owner_ids: Sequence[int],
    now: datetime,
) -> list[CoursePlan]:
    """The courses' decisions (a few small fields each, so a million fit in memory)."""
    plans = []
    for offset in range(count):
        plans.append(
            CoursePlan(
                id=first_id + offset,
                topic=rng.choice(TOPICS),
                price=_FREE if rng.random() < 0.3 else rng.choice(_PRICES),
                is_published=rng.random() < 0.85,
                capacity=None if rng.random() < 0.4 else rng.choice(_CAPACITIES),
                owner_id=rng.choice(owner_ids),
                created_at=now - timedelta(days=rng.randint(1, 365), seconds=rng.randint(0, 86399)),
            )
        )
    return plans


def with_enrollment_counts(
    plans: Sequence[CoursePlan], wanted: int, students: int, rng: random.Random
) -> list[CoursePlan]:
    """Spread ``wanted`` enrollments over the published courses by a long-tailed
    popularity (a few hits, many quiet courses), never above a capacity or the number of
    students."""
    caps = [min(p.capacity or students, students) if p.is_published else 0 for p in plans]
    weights = [rng.paretovariate(1.2) if cap else 0.0 for cap in caps]
    counts = [0] * len(plans)
    remaining = min(wanted, sum(caps))
    while remaining > 0:
        total = sum(w for w, c, cap in zip(weights, counts, caps, strict=True) if c < cap)
        if total <= 0:
            break
        share = remaining / total
        placed = 0
        for i, cap in enumerate(caps):
            if counts[i] >= cap or not weights[i]:
                continue
            take = min(cap - counts[i], int(weights[i] * share) or 1, remaining - placed)
            counts[i] += take
            placed += take
            if placed >= remaining:
                break
        remaining -= placed
        if not placed:
            break
    return [_with_count(p, n) for p, n in zip(plans, counts, strict=True)]


def _with_count(plan: CoursePlan, enrolled: int) -> CoursePlan:
    return CoursePlan(
        plan.id,
        plan.topic,
        plan.price,
        plan.is_published,
        plan.capacity,
        plan.owner_id,
        plan.created_at,
        enrolled,
    )


def course_rows(
    plans: Sequence[CoursePlan], lessons_per_course: int, rng: random.Random, now: datetime
) -> Iterator[tuple[Any, ...]]:
    """One row per course; ``seats_taken`` and ``lessons_count`` match what follows."""
    for p in plans:
        audience, outcome = rng.choice(_AUDIENCES), rng.choice(_OUTCOMES)
        description = (
            f"A course on {p.topic} for {audience}, in {lessons_per_course} lessons. "
            f"Short videos, exercises and a final project help you {outcome}."
        )
        title = rng.choice(_TITLE_PATTERNS).format(topic=p.topic)
        updated = min(p.created_at + timedelta(days=rng.randint(0, 20)), now)
        yield (
            p.id,
            title,
            description,
            p.price,
            p.is_published,
            p.capacity,
            p.enrolled,
            lessons_per_course,
            p.owner_id,
            p.created_at,
            updated,
        )


def lesson_rows(
    plans: Sequence[CoursePlan], lessons_per_course: int, first_id: int, rng: random.Random
) -> Iterator[tuple[Any, ...]]:
    """``lessons_per_course`` lessons per course, numbered from 1."""
    next_id = first_id
    durations = (5, 8, 10, 12, 15, 20, 25, 30, 45)
    for p in plans:
        for n in range(1, lessons_per_course + 1):
            title = _LESSON_PATTERNS[(n - 1) % len(_LESSON_PATTERNS)].format(topic=p.topic, n=n)
            content = (
                f"In this lesson on {p.topic} we cover {title.lower()}. "
                "Watch the video, then try the exercise before the next lesson."
            )
            yield (
                next_id,
                p.id,
                f"{n}. {title}",
                content,
                rng.choice(durations),
                n,
                p.created_at,
                p.created_at,
            )
            next_id += 1


def enrollment_rows(
    plans: Sequence[CoursePlan],
    first_id: int,
    student_ids: range,
    rng: random.Random,
    now: datetime,
) -> Iterator[tuple[Any, ...]]:
    """Each course's enrollments by distinct students. Paid courses keep some recent,
    unconfirmed (pending) ones -- recent, so the abandonment job does not expire them the
    moment a worker starts; every demo enrollment counts as already e-mailed."""
    next_id = first_id
    pending_status, active_status = EnrollmentStatus.pending.value, EnrollmentStatus.active.value
    for p in plans:
        if not p.enrolled:
            continue
        paid = p.price > 0
        age = max((now - p.created_at).total_seconds(), 1.0)
        # Distinct students without sampling: a walk around the student ids from a random
        # start with a random stride coprime to their number.
        start, stride = rng.randrange(len(student_ids)), _stride(len(student_ids), rng)
        for k in range(p.enrolled):
            student = student_ids[(start + k * stride) % len(student_ids)]
            status: str = active_status
            confirmed: datetime | None = None
            if paid and rng.random() < 0.2:
                status, created = pending_status, now - timedelta(seconds=60 * rng.randint(1, 600))
            else:
                created = p.created_at + timedelta(seconds=int(rng.random() * age))
                confirmed = created if paid else None
            yield (next_id, student, p.id, status, created, created, confirmed, created)
            next_id += 1


def _stride(n: int, rng: random.Random) -> int:
    """A step in ``1..n-1`` coprime to ``n`` (1 when ``n`` < 3), so ``n`` steps visit
    every student once."""
    if n < 3:
        return 1
    while True:
        step = rng.randrange(1, n)
        if math.gcd(step, n) == 1:
            return step
