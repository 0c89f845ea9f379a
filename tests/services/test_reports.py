"""Daily report figures against a hand count; rebuilding a day replaces it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlmodel import select

from eduflow.db import session_scope
from eduflow.models import DailyReport, User
from eduflow.services.reports import build_daily_report, daily_report
from tests.factories import make_certificate, make_course, make_enrollment, make_user

DAY = date(2024, 5, 10)
NOON = datetime(2024, 5, 10, 12, tzinfo=UTC)


def _seed() -> dict[str, int]:
    before, after = NOON - timedelta(days=1), NOON + timedelta(days=1)
    with session_scope() as s:
        a = make_course(s, title="Algebra")
        b = make_course(s, title="Biology")
        c = make_course(s, title="Chemistry")
        # 2 instructors above + 5 students joined on DAY; 2 students joined on other days.
        for u in s.exec(select(User)).all():
            u.date_joined = NOON
        on_day = [make_user(s, date_joined=NOON) for _ in range(5)]
        other = [make_user(s, date_joined=before), make_user(s, date_joined=after)]
        # Enrollments on DAY: Biology 3, Algebra 2 (1 pending), Chemistry 1 (expired).
        for st in on_day[:3]:
            make_enrollment(s, st, b, created_at=NOON)
        make_enrollment(s, on_day[3], a, created_at=NOON, completed_at=NOON)
        make_enrollment(s, on_day[4], a, status="pending", created_at=NOON)
        make_enrollment(s, on_day[0], c, status="expired", created_at=NOON)
        # Before DAY: one active (counts as active), after DAY: one (does not count at all).
        make_enrollment(s, other[0], a, created_at=before, completed_at=before)
        make_enrollment(s, other[1], b, created_at=after)
        # Certificates: two issued on DAY (one revoked since: it still counts), one before.
        make_certificate(s, on_day[3], a, issued_at=NOON)
        make_certificate(s, on_day[0], b, issued_at=NOON, revoked_at=after)
        make_certificate(s, other[0], a, issued_at=before)
        return {"a": a.id, "b": b.id, "c": c.id}


def test_figures_match_a_hand_count() -> None:
    ids = _seed()
    with session_scope() as s:
        report = build_daily_report(s, DAY)
    assert report.new_users == 3 + 5  # 3 instructors (one per course) + 5 students
    assert report.new_enrollments == 6
    assert report.active_enrollments == 3 + 1 + 1  # Biology 3, Algebra 1 on DAY, 1 before
    assert report.completions == 1  # the one completed before DAY counts on its own day
    assert report.certificates == 2
    assert report.top_courses == [
        {"course_id": ids["b"], "title": "Biology", "enrollments": 3},
        {"course_id": ids["a"], "title": "Algebra", "enrollments": 2},
        {"course_id": ids["c"], "title": "Chemistry", "enrollments": 1},
    ]


def test_rebuilding_a_day_replaces_its_row() -> None:
    with session_scope() as s:
        first = build_daily_report(s, DAY)
    assert first.new_users == 0
    with session_scope() as s:
        make_user(s, date_joined=NOON)
    with session_scope() as s:
        second = build_daily_report(s, DAY)
    assert second.new_users == 1
    with session_scope() as s:
        rows = s.exec(select(DailyReport)).all()
    assert len(rows) == 1 and rows[0].new_users == 1
    assert rows[0].generated_at >= first.generated_at


def test_a_final_report_is_shown_as_stored_until_rebuilt() -> None:
    with session_scope() as s:
        built = daily_report(s, DAY)  # nothing stored yet: built now, after DAY ended
        generated = built.generated_at
    assert built.new_users == 0
    with session_scope() as s:
        make_user(s, date_joined=NOON)  # (a back-dated row the service itself never writes)
    with session_scope() as s:
        shown = daily_report(s, DAY)
        assert (shown.new_users, shown.generated_at) == (0, generated)
        rebuilt = daily_report(s, DAY, rebuild=True)
        assert rebuilt.new_users == 1 and rebuilt.generated_at > generated


def test_a_report_from_before_a_figure_existed_is_built_again() -> None:
    with session_scope() as s:
        daily_report(s, DAY).certificates = None  # as migration 0012 leaves older reports
    with session_scope() as s:
        assert daily_report(s, DAY).certificates == 0


def test_a_report_built_before_its_day_ended_is_built_again() -> None:
    today = datetime.now(UTC).date()
    with session_scope() as s:
        first = daily_report(s, today)
    with session_scope() as s:
        make_user(s)
    with session_scope() as s:
        second = daily_report(s, today)
    assert second.new_users == first.new_users + 1
    assert second.generated_at > first.generated_at


def test_a_day_that_has_not_begun_is_refused() -> None:
    from eduflow.errors import Invalid

    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    for day in (tomorrow, date.max):
        with session_scope() as s, pytest.raises(Invalid) as info:
            build_daily_report(s, day)
        assert info.value.errors == [{"field": "date", "message": f"{day} is in the future"}]
    with session_scope() as s:
        assert s.exec(select(DailyReport)).all() == []
