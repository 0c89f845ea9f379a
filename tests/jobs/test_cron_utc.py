"""Cron schedules are read in UTC whatever the host's time zone (the settings say UTC)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest


@pytest.fixture
def host_in_new_york() -> Iterator[None]:
    """The process's local time zone is five hours behind UTC (in winter)."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "America/New_York"
    time.tzset()
    yield
    if old is None:
        os.environ.pop("TZ")
    else:
        os.environ["TZ"] = old
    time.tzset()


def test_the_daily_report_slot_is_utc_on_a_host_in_another_zone(host_in_new_york: None) -> None:
    from eduflow.jobs.scheduler import _latest_cron_slot, next_cron_slot

    at = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    assert next_cron_slot("5 0 * * *", at) == datetime(2026, 12, 2, 0, 5, tzinfo=UTC)
    assert _latest_cron_slot("5 0 * * *", at) == datetime(2026, 12, 1, 0, 5, tzinfo=UTC)


def test_the_scheduler_s_cron_jobs_run_at_utc_times(host_in_new_york: None) -> None:
    from eduflow.cache.stores import get_redis
    from eduflow.jobs.scheduler import build_scheduler

    client = get_redis()
    assert client is not None
    (report,) = [j for j in build_scheduler(client)._cron_jobs if j.name == "daily_report"]
    nxt = report.next_enqueue_time.astimezone(UTC)
    assert (nxt.hour, nxt.minute) == (0, 5)  # EDUFLOW_REPORT_CRON "5 0 * * *", in UTC
    assert nxt > datetime.now(UTC)
