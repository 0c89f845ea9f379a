"""The waitlist of a full course: join, leave, accept or decline an offer, expire offers.

Every change here runs under the course row lock (``seats.lock_course``, the one lock
order), so the line, the counters (``waitlist_count``, ``offers_open``) and the seats move
together. A freed seat is offered by ``seats.seats_freed`` in the transaction that frees
it; an offer that ends without taking its seat (declined, left, expired) passes it on with
``seats.offer_released``. The capacity rule: ``seats_taken + offers_open <= capacity``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Integer, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from eduflow.cache.catalog import invalidate_catalog
from eduflow.db import session_scope
from eduflow.errors import Conflict, Forbidden, NotFound
from eduflow.models._base import utcnow
from eduflow.models.courses import Course
from eduflow.models.enrollments import Enrollment, EnrollmentPublic
from eduflow.models.waitlist import (
    OPEN_STATUSES,
    WaitlistEntry,
    WaitlistEntryPublic,
    WaitlistStatus,
)
from eduflow.services import seats
from eduflow.services.enrollments import insert_enrollment
from eduflow.services.permissions import (
    Principal,
    is_owner_or_admin,
    may_see_course,
    require_authenticated,
)
from eduflow.services.waitlist_offers import offer_free_seats
from eduflow.services.waitlist_reads import get_entry, list_waitlist, load_visible

__all__ = [
    "accept_offer",
    "decline_offer",
    "expire_offers",
    "get_entry",
    "join",
    "join_waitlist",
    "leave_every_line",
    "leave_waitlist",
    "list_waitlist",
    "promote",
]


def _require_student(actor: Principal | None) -> Principal:
    actor = require_authenticated(actor)
    if not actor.is_student:
        raise Forbidden("Only students can join a waitlist")
    return actor


def join(actor: Principal | None, course_id: int) -> WaitlistEntryPublic:
    """``join_waitlist`` in a unit of work of its own, committed before it returns."""
    with session_scope() as session:
        return join_waitlist(session, actor, course_id)


def join_waitlist(session: Session, actor: Principal | None, course_id: int) -> WaitlistEntryPublic:
    """The calling student joins the line of a full, published course.

    409 ``course-not-full`` while a seat is free (enroll instead), ``already-enrolled`` for
    a student holding a seat, ``already-on-waitlist`` for a second open entry.

    A rushed course queues its joins on its row lock, so the locked part is two statements:
    the counter ``UPDATE`` that takes the lock and re-checks that the course is full, and the
    entry's ``INSERT`` (the partial unique index refuses a second open entry). What can be
    refused without the lock is refused first.
    """
    actor = _require_student(actor)
    params = {"course_id": course_id, "student_id": actor.id}
    _refuse_join(actor, session.execute(_join_figures(), params).one_or_none(), course_id)
    # The newest entry is last in line: its position is the count of waiting entries.
    position = session.execute(
        update(Course)
        .where(col(Course.id) == course_id, col(Course.is_published), ~seats.has_free_seat())
        .values(waitlist_count=col(Course.waitlist_count) + 1)
        .returning(col(Course.waitlist_count))
        .execution_options(synchronize_session=False)
    ).scalar()
    if position is None:  # a seat freed (or the course went) meanwhile
        _refuse_join(actor, session.execute(_join_figures(), params).one_or_none(), course_id)
        raise _not_full(course_id)
    now = utcnow()
    try:
        entry_id = session.execute(
            insert(WaitlistEntry)
            .values(
                course_id=course_id,
                student_id=actor.id,
                status=WaitlistStatus.waiting.value,
                created_at=now,
                updated_at=now,
            )
            .returning(col(WaitlistEntry.id))
        ).scalar_one()
    except IntegrityError:  # an open entry raced in: the whole transaction is undone
        raise _already_waiting(course_id) from None
    invalidate_catalog(session, course_id)
    return WaitlistEntryPublic(
        id=entry_id,
        course=course_id,
        student=actor.username,
        status=WaitlistStatus.waiting,
        position=position,
        created_at=now,
        offer_expires_at=None,
    )


@cache
def _join_figures() -> Any:
    """The course's figures, the student's seat and open entry, read without any lock."""
    student_id = bindparam("student_id", type_=Integer)
    course_id = bindparam("course_id", type_=Integer)
    held = (
        select(col(Enrollment.status))
        .where(col(Enrollment.student_id) == student_id, col(Enrollment.course_id) == course_id)
        .scalar_subquery()
    )
    open_entry = (
        select(col(WaitlistEntry.id))
        .where(
            col(WaitlistEntry.student_id) == student_id,
            col(WaitlistEntry.course_id) == course_id,
            col(WaitlistEntry.status).in_(OPEN_STATUSES),
        )
        .limit(1)
        .scalar_subquery()
    )
    return select(
        col(Course.is_published),
        col(Course.owner_id),
        col(Course.capacity),
        col(Course.seats_taken),
        col(Course.offers_open),
        held.label("held"),
        open_entry.label("open_entry"),
    ).where(col(Course.id) == course_id)


def _refuse_join(actor: Principal, figures: Any, course_id: int) -> None:
    if figures is None or not may_see_course(actor, figures.is_published, figures.owner_id):
        raise NotFound(f"No course with id {course_id}")
    if not figures.is_published:
        raise NotFound(f"No course with id {course_id}")
    if figures.held in seats.SEAT_HOLDING:
        raise seats.already_enrolled(course_id)
    if figures.open_entry is not None:
        raise _already_waiting(course_id)
    if not seats.is_full(figures.capacity, figures.seats_taken, figures.offers_open):
        raise _not_full(course_id)


def _not_full(course_id: int) -> Conflict:
    return Conflict(
        f"Course {course_id} has a free seat: enroll with POST /api/v1/enrollments/",
        slug="course-not-full",
        title="Course not full",
    )


def _already_waiting(course_id: int) -> Conflict:
    return Conflict(
        f"You are already on the waitlist of course {course_id}",
        slug="already-on-waitlist",
        title="Already on the waitlist",
    )


def _count_waiting(session: Session, course_id: int, delta: int) -> None:
    session.execute(
        update(Course)
        .where(col(Course.id) == course_id)
        .values(waitlist_count=col(Course.waitlist_count) + delta)
        .execution_options(synchronize_session=False)
    )


def _lock_entry(
    session: Session, actor: Principal, entry_id: int, *, own: bool
) -> tuple[WaitlistEntry, str]:
    """The visible entry, re-read under its course's row lock (the one lock order)."""
    entry, student = load_visible(session, actor, entry_id)
    if own and actor.id != entry.student_id:
        raise Forbidden("Only the student may answer an offer")
    if not (own or actor.is_admin or actor.id == entry.student_id):
        raise Forbidden("Only the student or an admin may remove a waitlist entry")
    course_id = entry.course_id
    session.expunge(entry)
    if not seats.lock_course(session, course_id):
        raise NotFound(f"No waitlist entry with id {entry_id}")
    locked = session.get(WaitlistEntry, entry_id, populate_existing=True)
    if locked is None:
        raise NotFound(f"No waitlist entry with id {entry_id}")
    return locked, student


def _close(session: Session, entry: WaitlistEntry, status: WaitlistStatus) -> None:
    """End an open entry; an offer's seat passes to the next in line."""
    was = entry.status
    entry.status = status.value
    entry.updated_at = utcnow()
    session.add(entry)
    session.flush()
    if was == WaitlistStatus.waiting.value:
        _count_waiting(session, entry.course_id, -1)
        invalidate_catalog(session, entry.course_id)
    elif was == WaitlistStatus.offered.value:
        seats.offer_released(session, entry.course_id)


def _closed(entry: WaitlistEntry) -> Conflict:
    return Conflict(
        f"Waitlist entry {entry.id} is {entry.status}",
        slug="waitlist-entry-closed",
        title="Waitlist entry closed",
    )


def leave_waitlist(session: Session, actor: Principal | None, entry_id: int) -> None:
    """The student (or an admin) removes an open entry; a held seat goes to the next."""
    actor = require_authenticated(actor)
    entry, _ = _lock_entry(session, actor, entry_id, own=False)
    if entry.status not in OPEN_STATUSES:
        raise _closed(entry)
    _close(session, entry, WaitlistStatus.left)


def decline_offer(session: Session, actor: Principal | None, entry_id: int) -> None:
    """The student declines an open offer: its seat goes to the next in line."""
    actor = require_authenticated(actor)
    entry, _ = _lock_entry(session, actor, entry_id, own=True)
    if entry.status != WaitlistStatus.offered.value:
        raise _not_offered(entry)
    _close(session, entry, _expired_or(entry, WaitlistStatus.declined))


def _not_offered(entry: WaitlistEntry) -> Conflict:
    return Conflict(
        f"Waitlist entry {entry.id} is {entry.status}, not offered",
        slug="no-open-offer",
        title="No open offer",
    )


def _expired_or(entry: WaitlistEntry, status: WaitlistStatus) -> WaitlistStatus:
    deadline = entry.offer_expires_at
    return WaitlistStatus.expired if deadline is not None and deadline <= utcnow() else status


@dataclass(frozen=True, slots=True)
class _Expired:
    entry_id: int


def accept_offer(actor: Principal | None, entry_id: int) -> EnrollmentPublic:
    """The student accepts an open offer before its deadline -> the enrollment (active if
    the course is free, pending if paid), on the seat the offer held.

    Its own unit of work, committed before it returns: an offer found past its deadline is
    expired (its seat passed on) and committed, then answered with 409 ``offer-expired``.
    """
    with session_scope() as session:
        outcome = _accept(session, actor, entry_id)
    if isinstance(outcome, _Expired):
        raise Conflict(
            f"The offer of waitlist entry {outcome.entry_id} has expired",
            slug="offer-expired",
            title="Offer expired",
        )
    return outcome


def _accept(
    session: Session, actor: Principal | None, entry_id: int
) -> EnrollmentPublic | _Expired:
    actor = _require_student(actor)
    entry, _ = _lock_entry(session, actor, entry_id, own=True)
    if entry.status == WaitlistStatus.expired.value:
        return _Expired(entry_id)
    if entry.status != WaitlistStatus.offered.value:
        raise _not_offered(entry)
    if _expired_or(entry, WaitlistStatus.accepted) is WaitlistStatus.expired:
        _close(session, entry, WaitlistStatus.expired)
        return _Expired(entry_id)
    figures = session.execute(
        select(col(Course.title), col(Course.lessons_count)).where(
            col(Course.id) == entry.course_id
        )
    ).one()
    seats.take_held_seat(session, entry.course_id)
    entry.status = WaitlistStatus.accepted.value
    entry.updated_at = utcnow()
    session.add(entry)
    session.flush()
    return insert_enrollment(session, actor, entry.course_id, figures)


def expire_offers(session: Session, *, now: datetime | None = None) -> int:
    """Expire offers past their deadline; each seat goes to the next in line."""
    now = now or utcnow()
    due = (
        col(WaitlistEntry.status) == WaitlistStatus.offered.value,
        col(WaitlistEntry.offer_expires_at) <= now,
    )
    candidates = select(col(WaitlistEntry.course_id)).where(*due)
    locked = seats.lock_courses(session, candidates)
    if not locked:
        return 0
    course_ids = (
        session.execute(
            update(WaitlistEntry)
            .where(*due, col(WaitlistEntry.course_id).in_(locked))
            .values(status=WaitlistStatus.expired.value, updated_at=now)
            .returning(col(WaitlistEntry.course_id))
            .execution_options(synchronize_session=False)
        )
        .scalars()
        .all()
    )
    for course_id, count in sorted(Counter(course_ids).items()):
        seats.offer_released(session, course_id, count)
    return len(course_ids)


def promote(session: Session, actor: Principal | None, course_id: int) -> list[int]:
    """Offer the course's free seats to the line now (owner or admin); the entries offered."""
    actor = require_authenticated(actor)
    if not seats.lock_course(session, course_id):
        raise NotFound(f"No course with id {course_id}")
    owner_id = session.execute(
        select(col(Course.owner_id)).where(col(Course.id) == course_id)
    ).scalar_one()
    if not is_owner_or_admin(actor, owner_id):
        raise Forbidden("Only the course owner or an admin may promote its waitlist")
    offered = offer_free_seats(session, course_id)
    if offered:
        invalidate_catalog(session, course_id)
    return offered


def leave_every_line(session: Session, student_id: int) -> int:
    """End every open entry of a student (an account being deleted): each held seat goes
    to the next in line. Courses are locked in id order, like the expiry jobs."""
    course_ids = seats.lock_courses(
        session,
        select(col(WaitlistEntry.course_id)).where(
            col(WaitlistEntry.student_id) == student_id,
            col(WaitlistEntry.status).in_(OPEN_STATUSES),
        ),
    )
    entries = (
        session.execute(
            select(WaitlistEntry).where(
                col(WaitlistEntry.student_id) == student_id,
                col(WaitlistEntry.course_id).in_(course_ids),
                col(WaitlistEntry.status).in_(OPEN_STATUSES),
            )
        )
        .scalars()
        .all()
    )
    for entry in entries:
        _close(session, entry, WaitlistStatus.left)
    return len(entries)
