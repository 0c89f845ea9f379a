"""The waitlist as its readers see it: entries with their place in line, for the student,
the course owner and admins (404 for anyone else)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from eduflow.errors import NotFound
from eduflow.models.courses import Course
from eduflow.models.users import User
from eduflow.models.waitlist import WaitlistEntry, WaitlistEntryPublic, WaitlistStatus
from eduflow.services.permissions import Principal, is_owner_or_admin, require_authenticated


def _position() -> Any:
    """The entry's place in line: waiting entries of its course up to it (an index range)."""
    ahead = aliased(WaitlistEntry)
    return (
        select(func.count())
        .select_from(ahead)
        .where(
            col(ahead.course_id) == col(WaitlistEntry.course_id),
            col(ahead.status) == WaitlistStatus.waiting.value,
            col(ahead.id) <= col(WaitlistEntry.id),
        )
        .correlate(WaitlistEntry)
        .scalar_subquery()
    )


def _select_entries() -> Any:
    return (
        select(WaitlistEntry, col(User.username), col(Course.owner_id), _position().label("pos"))
        .join(Course, col(Course.id) == col(WaitlistEntry.course_id))
        .join(User, col(User.id) == col(WaitlistEntry.student_id))
    )


def _public(entry: WaitlistEntry, student: str, position: int | None) -> WaitlistEntryPublic:
    assert entry.id is not None
    waiting = entry.status == WaitlistStatus.waiting.value
    return WaitlistEntryPublic(
        id=entry.id,
        course=entry.course_id,
        student=student,
        status=WaitlistStatus(entry.status),
        position=int(position or 0) if waiting else None,
        created_at=entry.created_at,
        offer_expires_at=entry.offer_expires_at,
    )


def _visible(actor: Principal) -> list[Any]:
    if actor.is_admin:
        return []
    if actor.is_instructor:
        return [col(Course.owner_id) == actor.id]
    return [col(WaitlistEntry.student_id) == actor.id]


def list_waitlist(
    session: Session,
    actor: Principal | None,
    *,
    course_id: int | None = None,
    student_id: int | None = None,
    status: WaitlistStatus | str | None = None,
    offset: int = 0,
    limit: int | None = 20,
) -> tuple[int, list[WaitlistEntryPublic]]:
    """``(total, page)`` in join order: students their own entries, instructors those of
    their courses, admins all; two queries whatever the page size."""
    actor = require_authenticated(actor)
    conditions = _visible(actor)
    if course_id is not None:
        conditions.append(col(WaitlistEntry.course_id) == course_id)
    if student_id is not None:
        conditions.append(col(WaitlistEntry.student_id) == student_id)
    if status is not None:
        conditions.append(col(WaitlistEntry.status) == WaitlistStatus(status).value)
    total = session.execute(
        select(func.count())
        .select_from(WaitlistEntry)
        .join(Course, col(Course.id) == col(WaitlistEntry.course_id))
        .where(*conditions)
    ).scalar()
    stmt = _select_entries().where(*conditions).order_by(col(WaitlistEntry.id)).offset(offset)
    if limit is not None:
        stmt = stmt.limit(limit)
    rows = session.execute(stmt).all()
    return int(total or 0), [_public(e, student, pos) for e, student, _, pos in rows]


def load_visible(session: Session, actor: Principal, entry_id: int) -> tuple[WaitlistEntry, str]:
    row = session.execute(_select_entries().where(col(WaitlistEntry.id) == entry_id)).one_or_none()
    if row is None:
        raise NotFound(f"No waitlist entry with id {entry_id}")
    entry, student, owner_id, _ = row
    if not (actor.id == entry.student_id or is_owner_or_admin(actor, owner_id)):
        raise NotFound(f"No waitlist entry with id {entry_id}")
    return entry, student


def get_entry(session: Session, actor: Principal | None, entry_id: int) -> WaitlistEntryPublic:
    """One entry, for its student, the course owner and admins (404 for anyone else)."""
    actor = require_authenticated(actor)
    entry, student = load_visible(session, actor, entry_id)
    return _reread(session, entry.id or entry_id, student)


def _reread(session: Session, entry_id: int, student: str) -> WaitlistEntryPublic:
    row = session.execute(_select_entries().where(col(WaitlistEntry.id) == entry_id)).one()
    return _public(row[0], student, row[3])
