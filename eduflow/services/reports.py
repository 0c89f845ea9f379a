"""Daily reports: per-day figures built from the database; rebuilding a day replaces its row."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from eduflow.db import long_work
from eduflow.errors import Invalid, NotFound
from eduflow.models import Certificate, Course, DailyReport, Enrollment, User
from eduflow.models._base import utcnow
from eduflow.models.enrollments import EnrollmentStatus

TOP_COURSES = 5


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The UTC half-open interval [start, end) of ``day``."""
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


def default_report_day(now: datetime | None = None) -> date:
    """The last complete UTC day: the one a periodic run reports on."""
    return ((now or utcnow()).astimezone(UTC) - timedelta(days=1)).date()


def compute_daily_figures(session: Session, day: date) -> dict[str, Any]:
    """The figures of ``day`` (UTC): new users, new enrollments, active enrollments,
    completions (enrollments that completed their course that day), certificates issued
    that day (a later revocation does not take one back from its day), top courses.

    ``active_enrollments`` counts enrollments that are active now and were active by the end
    of the day (confirmed, or created active, before midnight).

    Every figure but that one reads an index range of the day (``date_joined``,
    ``created_at``, ``completed_at``, ``issued_at``); the active count is a count of the active
    enrollments created before the day's end, read from ``(status, created_at, id)``
    including ``confirmed_at`` (PostgreSQL: an index-only scan, no table rows).
    """
    start, end = day_bounds(day)
    new_users = session.exec(
        select(func.count())
        .select_from(User)
        .where(col(User.date_joined) >= start, col(User.date_joined) < end)
    ).one()
    new_enrollments = session.exec(
        select(func.count())
        .select_from(Enrollment)
        .where(col(Enrollment.created_at) >= start, col(Enrollment.created_at) < end)
    ).one()
    active = session.exec(
        select(func.count())
        .select_from(Enrollment)
        .where(
            col(Enrollment.status) == EnrollmentStatus.active.value,
            col(Enrollment.created_at) < end,
            or_(col(Enrollment.confirmed_at).is_(None), col(Enrollment.confirmed_at) < end),
        )
    ).one()
    completions = session.exec(
        select(func.count())
        .select_from(Enrollment)
        .where(col(Enrollment.completed_at) >= start, col(Enrollment.completed_at) < end)
    ).one()
    certificates = session.exec(
        select(func.count())
        .select_from(Certificate)
        .where(col(Certificate.issued_at) >= start, col(Certificate.issued_at) < end)
    ).one()
    # The day's enrollments are grouped by course first and only the top five courses
    # are joined for their titles: the work is the day's enrollments, not the catalogue.
    count = func.count(col(Enrollment.id)).label("enrollments")
    top = (
        select(col(Enrollment.course_id).label("course_id"), count)
        .where(col(Enrollment.created_at) >= start, col(Enrollment.created_at) < end)
        .group_by(col(Enrollment.course_id))
        .order_by(count.desc(), col(Enrollment.course_id))
        .limit(TOP_COURSES)
        .subquery()
    )
    top_rows = session.exec(
        select(col(Course.id), col(Course.title), top.c.enrollments)
        .join(top, top.c.course_id == col(Course.id))
        .order_by(top.c.enrollments.desc(), col(Course.id))
    ).all()
    return {
        "day": day,
        "new_users": int(new_users),
        "new_enrollments": int(new_enrollments),
        "active_enrollments": int(active),
        "completions": int(completions),
        "certificates": int(certificates),
        "top_courses": [
            {"course_id": cid, "title": title, "enrollments": int(n)} for cid, title, n in top_rows
        ],
    }


def build_daily_report(session: Session, day: date) -> DailyReport:
    """Build ``day``'s report and store it, replacing an earlier build (safe to run twice).

    A day that has not begun (UTC) has no figures: 422 rather than a row of zeros.
    """
    if day > utcnow().astimezone(UTC).date():
        raise Invalid.field("date", f"{day.isoformat()} is in the future")
    # Batch work, not a request: the active count reads the whole active set (0.7-1.8 s
    # at 10 million enrollments), which would outgrow the statement timeout long before
    # the day's figures do.
    with long_work(session):
        figures = compute_daily_figures(session, day)
    values = {**figures, "generated_at": utcnow()}
    table: Any = DailyReport.__table__  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        stmt: Any = pg_insert(table).values(**values)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(table).values(**values)
    update = {k: stmt.excluded[k] for k in values if k != "day"}
    session.execute(stmt.on_conflict_do_update(index_elements=["day"], set_=update))
    session.flush()
    report = session.get(DailyReport, day, populate_existing=True)
    assert report is not None
    return report


def is_final(report: DailyReport) -> bool:
    """Whether ``report`` was built after its day ended (UTC), with every figure.

    Such a report no longer changes when built again, but for the active count: every
    other figure counts rows stamped within the day, and those stamps are written as
    things happen, never back-dated. The active count is what it was when the report was
    built. A report from before a figure existed (``certificates`` is None) is not final."""
    if report.certificates is None:
        return False
    generated = report.generated_at
    if generated.tzinfo is None:  # SQLite hands back naive UTC
        generated = generated.replace(tzinfo=UTC)
    return generated >= day_bounds(report.day)[1]


def daily_report(session: Session, day: date, *, rebuild: bool = False) -> DailyReport:
    """``day``'s report as an operator asks for it: the stored one when it is final (the
    periodic ``daily_report`` job builds yesterday's after midnight), otherwise built and
    stored now; ``rebuild`` always builds it anew.

    Showing the stored report reads one row; building it reads the day's index ranges
    and the active count (see ``compute_daily_figures``)."""
    if not rebuild:
        stored = session.get(DailyReport, day)
        if stored is not None and is_final(stored):
            return stored
    return build_daily_report(session, day)


def get_daily_report(session: Session, day: date) -> DailyReport:
    """A stored report (404 when the day was never built)."""
    report = session.get(DailyReport, day)
    if report is None:
        raise NotFound(f"no report for {day.isoformat()}; build it with `eduflow report daily`")
    return report


def report_to_dict(report: DailyReport) -> dict[str, Any]:
    """A JSON-friendly view of a report."""
    return {
        "day": report.day.isoformat(),
        "new_users": report.new_users,
        "new_enrollments": report.new_enrollments,
        "active_enrollments": report.active_enrollments,
        "completions": report.completions,
        "certificates": report.certificates,
        "top_courses": report.top_courses,
        "generated_at": report.generated_at.isoformat(),
    }
