"""``eduflow demo seed``: output, JSON, refusals, and the defaults on PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select

from eduflow.db import session_scope
from eduflow.models import Course, Enrollment, User
from eduflow.services.demo import DEMO_PASSWORD

SMALL = ("--courses", "12", "--students", "40", "--lessons-per-course", "2", "--enrollments", "90")


def test_seed_prints_logins_and_password(cli: Any) -> None:
    result = cli("demo", "seed", *SMALL)
    assert result.exit_code == 0, result.stderr
    assert "demo_admin" in result.stdout
    assert "demo_instructor_001" in result.stdout
    assert "demo_student_00001" in result.stdout
    assert DEMO_PASSWORD in result.stdout
    assert "90 enrollments" in result.stdout


def test_seed_json_has_stable_keys(cli: Any) -> None:
    result = cli("demo", "seed", *SMALL, "--seed", "3", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) == {
        "admins",
        "instructors",
        "students",
        "courses",
        "published_courses",
        "lessons",
        "enrollments",
        "active_enrollments",
        "pending_enrollments",
        "completed_enrollments",
        "progress_rows",
        "password",
        "logins",
        "seconds",
    }
    assert data["courses"] == 12 and data["lessons"] == 24 and data["students"] == 40
    assert data["active_enrollments"] + data["pending_enrollments"] == data["enrollments"] == 90
    assert {login["role"] for login in data["logins"]} == {"admin", "instructor", "student"}


def test_demo_accounts_can_log_in_to_the_api(cli: Any, client: Any) -> None:
    assert cli("demo", "seed", *SMALL).exit_code == 0
    response = client.post(
        "/api/v1/auth/login/", json={"username": "demo_student_00001", "password": DEMO_PASSWORD}
    )
    assert response.status_code == 200, response.text


def test_second_seed_is_one_line_error_and_changes_nothing(cli: Any) -> None:
    assert cli("demo", "seed", *SMALL).exit_code == 0
    result = cli("demo", "seed", "--courses", "3", "--students", "3")
    assert result.exit_code == 1
    assert "already present" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    with session_scope(read_only=True) as session:
        assert session.scalar(select(func.count()).select_from(Course)) == 12


def test_negative_size_is_a_usage_error(cli: Any) -> None:
    result = cli("demo", "seed", "--students", "-5")
    assert result.exit_code == 2
    assert "Traceback" not in result.stderr


def test_defaults_on_postgresql(cli: Any) -> None:
    result = cli("demo", "seed", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["courses"], data["students"], data["lessons"]) == (1000, 10_000, 8000)
    assert data["enrollments"] == 50_000
    with session_scope(read_only=True) as session:
        assert session.scalar(select(func.count()).select_from(Enrollment)) == 50_000
        assert session.scalar(select(func.sum(Course.seats_taken))) == 50_000
        assert session.scalar(select(func.count()).select_from(User)) == 10_051
