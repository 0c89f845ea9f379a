"""Periodic jobs: abandoned-enrollment expiry and one enqueue per schedule slot."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlmodel import select

from eduflow.db import session_scope
from eduflow.models import Course, Enrollment
from eduflow.models._base import utcnow
from tests.factories import make_course, make_enrollment, make_user


def test_expiry_expires_only_old_pending_and_frees_seats() -> None:
    from eduflow.jobs.tasks import expire_abandoned_enrollments

    old = utcnow() - timedelta(days=2)
    with session_scope() as s:
        course = make_course(s, price="10.00", capacity=3)
        stale = make_enrollment(s, make_user(s), course, status="pending", created_at=old)
        fresh = make_enrollment(s, make_user(s), course, status="pending")
        paid = make_enrollment(s, make_user(s), course, status="active", created_at=old)
    assert expire_abandoned_enrollments() == 1
    assert expire_abandoned_enrollments() == 0  # safe to run twice
    with session_scope() as s:
        status = {e.id: e.status for e in s.exec(select(Enrollment)).all()}
        assert status == {stale.id: "expired", fresh.id: "pending", paid.id: "active"}
        assert s.get(Course, course.id).seats_taken == 2


def _queued(client: Any) -> list[str]:
    from rq import Queue

    return Queue("default", connection=client).get_job_ids()


def test_two_schedulers_and_a_restart_enqueue_each_slot_once() -> None:
    from eduflow.cache.stores import get_redis
    from eduflow.jobs.scheduler import build_scheduler

    client = get_redis()
    first, second = build_scheduler(client), build_scheduler(client)
    first.enqueue_jobs()
    second.enqueue_jobs()
    build_scheduler(client).enqueue_jobs()  # a restart within the same hour
    queued = sorted(_queued(client))
    assert len(queued) == 2, queued  # each interval job's current slot, once
    assert queued[0].startswith("cron-expire_abandoned_enrollments-")
    assert queued[1].startswith("cron-expire_waitlist_offers-")


def test_missed_daily_slot_is_caught_up_once_with_the_right_day() -> None:
    from rq.job import Job

    from eduflow.cache.stores import get_redis
    from eduflow.jobs.scheduler import _latest_cron_slot, build_scheduler

    client = get_redis()
    assert build_scheduler(client).catch_up() == 1
    assert build_scheduler(client).catch_up() == 0
    [job_id] = [j for j in _queued(client) if "daily_report" in j]
    slot = _latest_cron_slot("5 0 * * *", utcnow())
    assert Job.fetch(job_id, connection=client).kwargs == {
        "day": (slot - timedelta(days=1)).date().isoformat()
    }


def test_run_now_daily_report_runs_on_a_worker(cli: Any) -> None:
    from eduflow.models import DailyReport
    from tests.jobs.conftest import work_burst

    result = cli("jobs", "run", "daily_report", "--date", "2024-03-01")
    assert result.exit_code == 0, result.stderr
    work_burst()
    with session_scope() as s:
        assert s.get(DailyReport, date(2024, 3, 1)) is not None
