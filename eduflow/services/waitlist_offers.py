"""Freed seats go to the line: the first waiting entries of a course become offers.

Called by ``services.seats.seats_freed`` (and by what passes an offer on: decline, leave,
expiry), always under the course row lock and in the transaction that frees the seats, so a
freed seat is never visible as free to an enrollment before the line has had it.

The capacity rule with a waitlist (one rule, used by enrolling and the waitlist alike):
``seats_taken + offers_open <= capacity``. An open offer holds its seat until it is
accepted (the seat becomes taken), declined, left or expired (the seat goes to the next).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlmodel import Session, col

from eduflow.config import get_settings
from eduflow.logging import current_request_id
from eduflow.models._base import utcnow
from eduflow.models.courses import Course
from eduflow.models.outbox import OutboxJob
from eduflow.models.waitlist import WaitlistEntry, WaitlistStatus
from eduflow.outbox import record_row

OFFER_JOB = "send_waitlist_offer"
OFFER_QUEUE = "default"


def free_seats(capacity: int | None, seats_taken: int, offers_open: int) -> int | None:
    """Seats neither taken nor held by an offer; None for an unlimited course."""
    if capacity is None:
        return None
    return max(0, capacity - seats_taken - offers_open)


def offer_free_seats(session: Session, course_id: int, *, now: datetime | None = None) -> list[int]:
    """Offer every free seat of ``course_id`` to the first waiting entries (join order).

    The caller holds the course row lock. Each offer holds its seat (``offers_open``), ends
    its entry's wait (``waitlist_count``) and records one ``send_waitlist_offer`` job in the
    outbox. Returns the ids of the entries offered, in join order.
    """
    figures = session.execute(
        select(
            col(Course.capacity),
            col(Course.seats_taken),
            col(Course.offers_open),
            col(Course.waitlist_count),
            col(Course.is_published),
        ).where(col(Course.id) == course_id)
    ).one_or_none()
    if figures is None or not figures.waitlist_count or not figures.is_published:
        return []
    free = free_seats(figures.capacity, figures.seats_taken, figures.offers_open)
    if free == 0:
        return []
    now = now or utcnow()
    first_in_line: Any = (
        select(col(WaitlistEntry.id))
        .where(
            col(WaitlistEntry.course_id) == course_id,
            col(WaitlistEntry.status) == WaitlistStatus.waiting.value,
        )
        .order_by(col(WaitlistEntry.id))
    )
    if free is not None:
        first_in_line = first_in_line.limit(free)
    ids = sorted(session.execute(first_in_line).scalars().all())
    if not ids:
        return []
    deadline = now + timedelta(seconds=get_settings().waitlist_offer_ttl)
    session.execute(
        update(WaitlistEntry)
        .where(col(WaitlistEntry.id).in_(ids))
        .values(
            status=WaitlistStatus.offered.value,
            offered_at=now,
            offer_expires_at=deadline,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(Course)
        .where(col(Course.id) == course_id)
        .values(
            offers_open=col(Course.offers_open) + len(ids),
            waitlist_count=col(Course.waitlist_count) - len(ids),
        )
        .execution_options(synchronize_session=False)
    )
    request_id = current_request_id()
    for entry_id in ids:
        record_row(
            session,
            OutboxJob(
                job_name=OFFER_JOB,
                args={"entry_id": entry_id},
                queue=OFFER_QUEUE,
                request_id=request_id,
                created_at=now,
            ),
        )
    return ids
