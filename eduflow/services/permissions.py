"""Who is acting, and the object-permission helpers every domain service reuses."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, or_, true

from eduflow.errors import Forbidden, Unauthorized
from eduflow.models.users import Role


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller as the services see it (no database row needed)."""

    id: int
    username: str
    role: Role
    session_id: str | None = None

    @property
    def is_admin(self) -> bool:
        """True for admins."""
        return self.role is Role.admin

    @property
    def is_instructor(self) -> bool:
        """True for instructors (not admins)."""
        return self.role is Role.instructor

    @property
    def is_student(self) -> bool:
        """True for students."""
        return self.role is Role.student


# The operator at the command line acts with admin rights.
OPERATOR = Principal(id=0, username="operator", role=Role.admin)


def require_authenticated(actor: Principal | None) -> Principal:
    """401 for anonymous callers."""
    if actor is None:
        raise Unauthorized("Authentication credentials were not provided")
    return actor


def require_role(actor: Principal | None, *roles: Role) -> Principal:
    """401 when anonymous, 403 when the role is not one of ``roles`` (admins always pass)."""
    actor = require_authenticated(actor)
    if actor.is_admin or actor.role in roles:
        return actor
    raise Forbidden("Your role does not allow this action")


def is_owner_or_admin(actor: Principal | None, owner_id: int) -> bool:
    """True when ``actor`` is an admin, or owns the object and still is an instructor.

    Role AND ownership: an instructor demoted to student keeps the rows but loses the
    owner's rights (drafts, content, changes, confirmations) on the next request.
    """
    if actor is None:
        return False
    return actor.is_admin or (actor.is_instructor and actor.id == owner_id)


def may_see_course(actor: Principal | None, is_published: bool, owner_id: int) -> bool:
    """The visibility rule of a course: published for everyone, a draft for its owner
    (while an instructor) and admins. The services and the cached answers both ask this;
    ``visible_courses`` is the same rule as a SQL condition, for lists."""
    return is_published or is_owner_or_admin(actor, owner_id)


def visible_courses(actor: Principal | None) -> ColumnElement[bool]:
    """``may_see_course`` as a SQL condition: the courses ``actor`` may see."""
    from sqlmodel import col

    from eduflow.models.courses import Course

    if actor is not None and actor.is_admin:
        return true()
    if actor is not None and actor.is_instructor:
        return or_(col(Course.is_published), col(Course.owner_id) == actor.id)
    return col(Course.is_published) == true()


def require_owner_or_admin(actor: Principal | None, owner_id: int) -> Principal:
    """403 unless ``actor`` owns the (visible) object or is an admin."""
    actor = require_authenticated(actor)
    if not is_owner_or_admin(actor, owner_id):
        raise Forbidden("Only the owner or an admin may change this")
    return actor
