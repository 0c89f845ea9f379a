"""Courses: who may see and change them, validation, listing and the course representation.

Shared by the API (``/courses/``), the operator CLI (``eduflow admin courses …``, acting as
``permissions.OPERATOR``) and the other catalogue services. Every write invalidates the
cached catalogue after its commit (``cache.invalidate_catalog``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy import delete, func, select
from sqlmodel import Session, col

from eduflow.cache.catalog import invalidate_catalog
from eduflow.choices import CourseOrdering as CourseOrdering
from eduflow.errors import Invalid, NotFound
from eduflow.models._base import utcnow
from eduflow.models.courses import Course, CourseCreate, CoursePublic, CourseUpdate
from eduflow.models.enrollments import Enrollment
from eduflow.models.users import Role, User
from eduflow.services import audit, seats
from eduflow.services.paging import (
    Page,
    PageRequest,
    SortKey,
    contains_text,
    finish_page,
    plan_page,
)
from eduflow.services.permissions import (
    Principal,
    may_see_course,
    require_authenticated,
    require_owner_or_admin,
    require_role,
    visible_courses,
)

M = TypeVar("M", bound=BaseModel)

DEFAULT_ORDERING: CourseOrdering = "-created_at"
_ORDER_COLUMNS: dict[str, Any] = {
    "created_at": col(Course.created_at),
    "price": col(Course.price),
    "title": col(Course.title),
}


def parse_input(model: type[M], data: M | Mapping[str, Any]) -> M:
    """Validate ``data`` against ``model`` (the CLI passes dicts); 422 with ``errors[]``."""
    if isinstance(data, model):
        return data
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        errors = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err.get("loc", ())) or "body"
            message = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
            if err.get("type") == "extra_forbidden":
                message = "unknown field"
            errors.append({"field": field, "message": message})
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        raise Invalid(detail, errors=errors) from exc


def to_public(course: Course, owner: str) -> CoursePublic:
    """The representation of ``course`` (``owner`` is the owner's username)."""
    assert course.id is not None
    return CoursePublic(
        id=course.id,
        title=course.title,
        description=course.description,
        price=f"{course.price:.2f}",
        is_published=course.is_published,
        capacity=course.capacity,
        seats_taken=course.seats_taken,
        waitlist_count=course.waitlist_count,
        owner=owner,
        lessons_count=course.lessons_count,
        created_at=course.created_at,
        updated_at=course.updated_at,
    )


def can_see(actor: Principal | None, course: Course) -> bool:
    """True when ``actor`` may see ``course``."""
    return may_see_course(actor, course.is_published, course.owner_id)


def get_visible_course(
    session: Session, actor: Principal | None, course_id: int, *, lock: bool = False
) -> Course:
    """The course if ``actor`` may see it, else 404 (drafts never leak their existence)."""
    stmt = select(Course).where(col(Course.id) == course_id)
    if lock:
        stmt = stmt.with_for_update()
    course: Course | None = session.execute(stmt).scalar_one_or_none()
    if course is None or not can_see(actor, course):
        raise NotFound(f"No course with id {course_id}")
    return course


def get_course_for_change(session: Session, actor: Principal | None, course_id: int) -> Course:
    """The course, row-locked, when ``actor`` owns it or is an admin (404 if invisible, 403)."""
    actor = require_authenticated(actor)
    course = get_visible_course(session, actor, course_id, lock=True)
    require_owner_or_admin(actor, course.owner_id)
    return course


def _owner_name(session: Session, course: Course) -> str:
    stmt = select(col(User.username)).where(col(User.id) == course.owner_id)
    return str(session.execute(stmt).scalar())


def course_detail(session: Session, actor: Principal | None, course_id: int) -> CoursePublic:
    """``GET /courses/{id}/``: one query (course joined with its owner's username)."""
    return course_detail_and_owner(session, actor, course_id)[0]


def course_detail_and_owner(
    session: Session, actor: Principal | None, course_id: int
) -> tuple[CoursePublic, int]:
    """``course_detail`` and the owner's id (what a cached copy notes of a draft)."""
    row = session.execute(
        select(Course, col(User.username))
        .join(User, col(User.id) == col(Course.owner_id))
        .where(col(Course.id) == course_id)
    ).one_or_none()
    if row is None or not can_see(actor, row[0]):
        raise NotFound(f"No course with id {course_id}")
    return to_public(row[0], row[1]), row[0].owner_id


@dataclass(frozen=True, slots=True)
class CourseFilters:
    """The list filters of ``GET /courses/``."""

    search: str | None = None
    ordering: CourseOrdering = DEFAULT_ORDERING
    is_published: bool | None = None
    owner: str | None = None  # username


def _filter_conditions(actor: Principal | None, filters: CourseFilters) -> list[Any]:
    conditions: list[Any] = [visible_courses(actor)]
    if filters.search and filters.search.strip():
        conditions.append(contains_text(filters.search, col(Course.title), col(Course.description)))
    if filters.is_published is not None:
        conditions.append(col(Course.is_published) == filters.is_published)
    if filters.owner is not None:
        owner_id = select(col(User.id)).where(col(User.username) == filters.owner)
        conditions.append(col(Course.owner_id) == owner_id.scalar_subquery())
    return conditions


def sort_key(ordering: str) -> SortKey:
    """The sort key of an ordering; ``id`` breaks ties so pages never overlap."""
    column = _ORDER_COLUMNS.get(ordering.lstrip("-"))
    if column is None:
        raise Invalid.field("ordering", "unknown ordering")
    return SortKey(ordering, (column, col(Course.id)), descending=ordering.startswith("-"))


def courses_page(
    session: Session,
    actor: Principal | None,
    filters: CourseFilters | None = None,
    request: PageRequest | None = None,
) -> Page[CoursePublic]:
    """One page of the courses ``actor`` may see (see ``services.paging``): two queries,
    a bounded count and the page joined with its owners' usernames."""
    filters = filters or CourseFilters()
    request = request or PageRequest()
    key = sort_key(filters.ordering)
    ids = select(col(Course.id)).where(*_filter_conditions(actor, filters))
    plan = plan_page(session, ids, key, request, search=filters.search)
    if plan.ids is None:
        return Page(plan.count, plan.count_exact)
    rows = session.execute(
        select(Course, col(User.username))
        .join(User, col(User.id) == col(Course.owner_id))
        .where(col(Course.id).in_(plan.ids))
        .order_by(*key.order_by())
    ).all()
    kept, cursor = finish_page(plan, key, rows, lambda r: r[0])
    results = [to_public(course, owner) for course, owner in kept]
    return Page(plan.count, plan.count_exact, results, cursor)


def list_courses(
    session: Session,
    actor: Principal | None,
    filters: CourseFilters | None = None,
    *,
    offset: int = 0,
    limit: int | None = 20,
) -> tuple[int, list[CoursePublic]]:
    """``(count, page)`` of the courses ``actor`` may see (``courses_page`` by offset)."""
    page = courses_page(session, actor, filters, PageRequest(offset=offset, limit=limit))
    return page.count, page.results


def create_course(
    session: Session,
    actor: Principal,
    data: CourseCreate | Mapping[str, Any],
    *,
    owner: User | None = None,
) -> CoursePublic:
    """A new course owned by the caller (instructors and admins; the CLI may name an owner)."""
    require_role(actor, Role.instructor)
    payload = parse_input(CourseCreate, data)
    if owner is None:
        owner_id, owner_name = actor.id, actor.username
    else:
        _require_teacher(owner)
        assert owner.id is not None
        owner_id, owner_name = owner.id, owner.username
    course = Course(**payload.model_dump(), owner_id=owner_id)
    session.add(course)
    session.flush()
    invalidate_catalog(session, course.id)
    return to_public(course, owner_name)


def _apply(session: Session, course: Course, changes: dict[str, Any]) -> None:
    capacity = changes.get("capacity", course.capacity)
    held = course.seats_taken + course.offers_open
    if capacity is not None and capacity < held:
        raise Invalid.field(
            "capacity",
            f"must not be below the {held} seats already taken or held for waitlist offers",
        )
    more_room = "capacity" in changes and course.capacity is not None
    more_room = more_room and (capacity is None or capacity > (course.capacity or 0))
    for name, value in changes.items():
        setattr(course, name, value)
    course.updated_at = utcnow()
    session.add(course)
    session.flush()  # the UPDATE holds the course row lock from here to the commit
    assert course.id is not None
    if more_room:
        seats.seats_freed(session, course.id)
    else:
        invalidate_catalog(session, course.id)


def update_course(
    session: Session,
    actor: Principal,
    course_id: int,
    data: CourseUpdate | CourseCreate | Mapping[str, Any],
) -> CoursePublic:
    """Change a course (owner/admin). ``CourseCreate`` replaces it (PUT), ``CourseUpdate``
    or a mapping changes only the fields given (PATCH)."""
    if isinstance(data, CourseCreate):
        changes = data.model_dump()
    else:
        changes = parse_input(CourseUpdate, data).model_dump(exclude_unset=True)
    course = get_course_for_change(session, actor, course_id)
    _apply(session, course, changes)
    return to_public(course, _owner_name(session, course))


def publish_course(session: Session, actor: Principal, course_id: int) -> CoursePublic:
    """Make a course visible to everyone (owner/admin)."""
    return update_course(session, actor, course_id, CourseUpdate(is_published=True))


def unpublish_course(session: Session, actor: Principal, course_id: int) -> CoursePublic:
    """Turn a course back into a draft (owner/admin); enrollments are kept."""
    return update_course(session, actor, course_id, CourseUpdate(is_published=False))


def _require_teacher(user: User) -> None:
    if user.role not in (Role.instructor.value, Role.admin.value) or not user.is_active:
        raise Invalid.field("owner", "must be an active instructor or admin")


def transfer_course(
    session: Session, actor: Principal, course_id: int, new_owner: User | int | str
) -> CoursePublic:
    """Give a course to another instructor or admin (``new_owner``: user, id or username)."""
    from eduflow.services.users import get_user_by_ref

    course = get_course_for_change(session, actor, course_id)
    if isinstance(new_owner, User):
        user = new_owner
    else:
        try:
            user = get_user_by_ref(session, str(new_owner))
        except NotFound as exc:
            raise Invalid.field("owner", f"no user matches {new_owner!r}") from exc
    _require_teacher(user)
    assert user.id is not None
    details = {"from_owner_id": course.owner_id, "to_owner_id": user.id}
    audit.record(session, actor, "course.transferred", "course", course_id, details)
    course.owner_id = user.id
    course.updated_at = utcnow()
    session.add(course)
    session.flush()
    invalidate_catalog(session, course.id)
    return to_public(course, user.username)


@dataclass(frozen=True, slots=True)
class DeletedCourse:
    """What went with a deleted course."""

    id: int
    title: str
    lessons: int
    enrollments: int


def delete_course(session: Session, actor: Principal, course_id: int) -> DeletedCourse:
    """Delete a course with its lessons and enrollments (owner/admin); says how many went."""
    course = get_course_for_change(session, actor, course_id)
    enrollments = session.execute(
        select(func.count()).select_from(Enrollment).where(col(Enrollment.course_id) == course_id)
    ).scalar()
    report = DeletedCourse(
        id=course_id,
        title=course.title,
        lessons=course.lessons_count,
        enrollments=int(enrollments or 0),
    )
    details = {"title": course.title, "enrollments": report.enrollments}
    audit.record(session, actor, "course.deleted", "course", course_id, details)
    session.execute(delete(Course).where(col(Course.id) == course_id))
    session.expunge(course)
    invalidate_catalog(session, course_id)
    return report
