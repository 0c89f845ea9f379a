"""`eduflow jobs …` and `eduflow report daily`: tables, --json, and one-line errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from eduflow.db import session_scope


def _failed_job(cli: Any, monkeypatch: Any) -> str:
    """One job in the failed registry (a report for a day that makes the task raise)."""
    from eduflow.outbox import record_job
    from tests.jobs.conftest import set_env, work_burst

    set_env(monkeypatch, job_retry_intervals="[]")
    with session_scope() as s:
        row = record_job(s, "daily_report", day="not-a-date")
    work_burst()
    return f"outbox-{row.id}"


def test_list_table_and_json(cli: Any, monkeypatch: Any) -> None:
    job_id = _failed_job(cli, monkeypatch)
    table = cli("jobs", "list")
    assert table.exit_code == 0
    assert job_id in table.stdout and "daily_report" in table.stdout
    data = json.loads(cli("jobs", "list", "--status", "failed", "--json").stdout)
    assert [(j["id"], j["status"], j["tries"]) for j in data] == [(job_id, "failed", 1)]
    assert "ValueError" in data[0]["error"]
    assert json.loads(cli("jobs", "list", "--status", "queued", "--json").stdout) == []


def test_list_rejects_an_unknown_status(cli: Any) -> None:
    result = cli("jobs", "list", "--status", "exploded")
    assert result.exit_code != 0
    assert "status" in result.stderr and "Traceback" not in result.stderr


def test_show_json_and_table(cli: Any, monkeypatch: Any) -> None:
    job_id = _failed_job(cli, monkeypatch)
    data = json.loads(cli("jobs", "show", job_id, "--json").stdout)
    assert data["args"] == {"day": "not-a-date"}
    assert data["status"] == "failed" and data["exception"].startswith("Traceback")
    assert data["enqueued_at"] and data["ended_at"]
    table = cli("jobs", "show", job_id)
    assert "not-a-date" in table.stdout


@pytest.mark.parametrize("bad", ["outbox-999", "x" * 300, ""])
def test_show_bad_id_is_one_clear_line(cli: Any, bad: str) -> None:
    result = cli("jobs", "show", bad)
    assert result.exit_code != 0
    assert result.stderr.count("\n") == 1 and "no job" in result.stderr
    assert "Traceback" not in result.stderr


def test_replay_is_tolerant_per_job(cli: Any, monkeypatch: Any) -> None:
    job_id = _failed_job(cli, monkeypatch)
    result = cli("jobs", "replay", "outbox-999", job_id, "--json")
    data = json.loads(result.stdout)
    assert result.exit_code == 0
    assert data["counts"] == {"missing": 1, "requeued": 1}
    assert json.loads(cli("jobs", "list", "--status", "queued", "--json").stdout)[0]["id"] == job_id


def test_replay_only_bad_ids_exits_non_zero(cli: Any) -> None:
    result = cli("jobs", "replay", "outbox-404")
    assert result.exit_code == 1
    assert "1 missing" in result.stdout


def test_replay_filters_and_dry_run(cli: Any, monkeypatch: Any) -> None:
    job_id = _failed_job(cli, monkeypatch)
    none = json.loads(cli("jobs", "replay", "--all", "--match", "smtp", "--json").stdout)
    assert none["counts"] == {}
    other = cli("jobs", "replay", "--all", "--function", "send_enrollment_email", "--json")
    assert json.loads(other.stdout)["counts"] == {}
    dry = cli("jobs", "replay", "--all", "--since", "1h", "--match", "isoformat", "--dry-run")
    assert "1 would-requeue" in dry.stdout
    assert json.loads(cli("jobs", "list", "--status", "failed", "--json").stdout)[0]["id"] == job_id


def test_replay_argument_errors(cli: Any) -> None:
    assert cli("jobs", "replay").exit_code == 2
    assert cli("jobs", "replay", "a", "--all").exit_code == 2
    bad_since = cli("jobs", "replay", "--all", "--since", "yesterday")
    assert bad_since.exit_code != 0 and "duration" in bad_since.stderr


def test_purge_needs_yes_then_deletes(cli: Any, monkeypatch: Any) -> None:
    _failed_job(cli, monkeypatch)
    refused = cli("jobs", "purge")
    assert refused.exit_code == 2 and "--yes" in refused.stderr
    done = cli("jobs", "purge", "--yes", "--json")
    assert json.loads(done.stdout) == {"status": "failed", "deleted": 1}
    assert json.loads(cli("jobs", "list", "--json").stdout) == []


def test_stats_table_and_json(cli: Any, monkeypatch: Any) -> None:
    _failed_job(cli, monkeypatch)
    from eduflow.outbox import record_job

    with session_scope() as s:  # recorded, relayed and waiting in the queue
        record_job(s, "daily_report", day="2024-01-01")
    data = json.loads(cli("jobs", "stats", "--json").stdout)
    [default] = [q for q in data["queues"] if q["queue"] == "default"]
    assert (default["queued"], default["failed"]) == (1, 1)
    assert data["outbox_backlog"] == 0
    assert "outbox backlog: 0" in cli("jobs", "stats").stdout


def test_run_enqueues_now_and_rejects_unknown_names(cli: Any) -> None:
    data = json.loads(cli("jobs", "run", "expire_abandoned_enrollments", "--json").stdout)
    assert data["job_id"] == "outbox-1"
    queued = json.loads(cli("jobs", "list", "--status", "queued", "--json").stdout)
    assert [j["function"] for j in queued] == ["expire_abandoned_enrollments"]
    bad = cli("jobs", "run", "send_spam")
    assert bad.exit_code == 2 and "unknown periodic job" in bad.stderr
    assert cli("jobs", "run", "daily_report", "--date", "31-12-2024").exit_code != 0


def test_relay_table(cli: Any) -> None:
    result = cli("jobs", "relay")
    assert result.exit_code == 0 and "relayed 0 job(s)" in result.stdout


def test_jobs_without_redis_is_one_clear_line(cli: Any, monkeypatch: Any) -> None:
    from tests.jobs.conftest import set_env

    monkeypatch.delenv("EDUFLOW_REDIS_URL")
    set_env(monkeypatch)
    for args in (("jobs", "list"), ("worker", "--burst")):
        result = cli(*args)
        assert result.exit_code != 0
        assert "EDUFLOW_REDIS_URL" in result.stderr and "Traceback" not in result.stderr


def test_report_daily_builds_and_shows(cli: Any) -> None:
    from tests.factories import make_user

    with session_scope() as s:
        make_user(s)
    from eduflow.models._base import utcnow

    today = utcnow().date().isoformat()
    data = json.loads(cli("report", "daily", "--date", today, "--json").stdout)
    assert data["day"] == today and data["new_users"] == 1
    table = cli("report", "daily", "--date", today)
    assert "new_users" in table.stdout and "no enrollments that day" in table.stdout
    # A past day's stored report is shown as built; --rebuild counts again.
    past = "2024-03-01"
    first = json.loads(cli("report", "daily", "--date", past, "--json").stdout)
    with session_scope() as s:
        make_user(s, date_joined=datetime(2024, 3, 1, 9, tzinfo=UTC))
    again = json.loads(cli("report", "daily", "--date", past, "--json").stdout)
    assert again == first and first["new_users"] == 0
    rebuilt = json.loads(cli("report", "daily", "--date", past, "--rebuild", "--json").stdout)
    assert rebuilt["new_users"] == 1 and rebuilt["generated_at"] > first["generated_at"]
    bad = cli("report", "daily", "--date", "2024-02-30")
    assert bad.exit_code != 0 and "is not a date" in bad.stderr


def test_report_daily_refuses_days_that_have_not_begun(cli: Any) -> None:
    from datetime import timedelta

    from eduflow.models._base import utcnow

    tomorrow = (utcnow() + timedelta(days=1)).date().isoformat()
    for day in (tomorrow, "9999-12-31"):  # the last one once overflowed into a traceback
        result = cli("report", "daily", "--date", day)
        assert result.exit_code == 1, result.stdout
        assert result.stderr.strip() == f"Error: date: {day} is in the future"
    from sqlmodel import select

    from eduflow.models import DailyReport

    with session_scope() as s:
        assert s.exec(select(DailyReport)).all() == []
