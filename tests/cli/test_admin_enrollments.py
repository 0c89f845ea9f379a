"""``eduflow admin enrollments``: list, show, confirm, cancel — same rules as over HTTP."""

from __future__ import annotations

import json
from typing import Any

from eduflow.models.users import Role
from tests.factories import make_course, make_enrollment, make_lesson, make_user

ENROLLMENT_KEYS = {
    "id", "course", "course_title", "student", "status", "created_at", "updated_at",
    "confirmed_at", "progress", "completed_at",
}  # fmt: skip


def _one_line_error(result: Any, text: str) -> None:
    assert result.exit_code == 1, result.stdout
    assert text in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def _setup(session: Any) -> dict[str, Any]:
    teacher = make_user(session, Role.instructor, username="teacher")
    paid = make_course(session, teacher, title="Paid course", price="25.00", capacity=5)
    free = make_course(session, teacher, title="Free course")
    lesson = make_lesson(session, paid, content="The secret sauce")
    ann = make_user(session, username="ann")
    ben = make_user(session, username="ben")
    rows = {
        "ann_paid": make_enrollment(session, ann, paid, status="pending"),
        "ben_paid": make_enrollment(session, ben, paid, status="active"),
        "ann_free": make_enrollment(session, ann, free, status="active"),
    }
    expired = make_user(session, username="old")
    rows["expired"] = make_enrollment(session, expired, paid, status="expired")
    paid.seats_taken -= 1  # an expired enrollment holds no seat
    session.add(paid)
    session.commit()
    return {"paid": paid, "free": free, "lesson": lesson, **rows}


def test_list_filters_and_json(cli: Any, session: Any) -> None:
    data = _setup(session)

    def ids(*args: str) -> list[int]:
        result = cli("admin", "enrollments", "list", *args, "--json")
        assert result.exit_code == 0, result.stderr
        body = json.loads(result.stdout)
        assert all(set(row) == ENROLLMENT_KEYS for row in body["results"])
        return sorted(row["id"] for row in body["results"])

    assert len(ids()) == 4
    assert ids("--course", str(data["free"].id)) == [data["ann_free"].id]
    assert ids("--student", "ann") == sorted([data["ann_paid"].id, data["ann_free"].id])
    assert ids("--status", "pending") == [data["ann_paid"].id]
    assert ids("--student", "ann", "--course", str(data["paid"].id), "--status", "PENDING") == [
        data["ann_paid"].id
    ]
    table = cli("admin", "enrollments", "list", "--status", "active")
    assert table.stdout.splitlines()[0].split("\t")[:5] == [
        "id", "course", "course_title", "student", "status",
    ]  # fmt: skip
    bad = cli("admin", "enrollments", "list", "--status", "lost")
    assert bad.exit_code == 2 and "is not one of" in bad.stderr
    _one_line_error(cli("admin", "enrollments", "list", "--student", "ghost"), "No user matches")


def test_show(cli: Any, session: Any) -> None:
    data = _setup(session)
    result = cli("admin", "enrollments", "show", str(data["ann_paid"].id), "--json")
    shown = json.loads(result.stdout)
    assert set(shown) == ENROLLMENT_KEYS
    assert (shown["student"], shown["status"], shown["course_title"]) == (
        "ann",
        "pending",
        "Paid course",
    )
    _one_line_error(cli("admin", "enrollments", "show", "98765"), "No enrollment with id 98765")


def test_confirm_behaves_like_http(cli: Any, client: Any, login: Any, session: Any) -> None:
    data = _setup(session)
    enrollment_id, course_id, lesson_id = data["ann_paid"].id, data["paid"].id, data["lesson"].id
    ann = login("ann")
    assert client.get(f"/api/v1/lessons/{lesson_id}/", headers=ann).json()["content"] is None
    seats_before = client.get(f"/api/v1/courses/{course_id}/").json()["seats_taken"]
    result = cli("admin", "enrollments", "confirm", str(enrollment_id), "--json")
    assert result.exit_code == 0, result.stderr
    confirmed = json.loads(result.stdout)
    assert confirmed["status"] == "active" and confirmed["confirmed_at"] is not None
    seen = client.get(f"/api/v1/enrollments/{enrollment_id}/", headers=ann).json()
    assert seen["status"] == "active"
    # The active enrollment opens the lesson content, and holds the same seat as before.
    assert client.get(f"/api/v1/lessons/{lesson_id}/", headers=ann).json()["content"] == (
        "The secret sauce"
    )
    assert client.get(f"/api/v1/courses/{course_id}/").json()["seats_taken"] == seats_before
    # Only a pending enrollment can be confirmed: an active one is a clear failure, over the
    # CLI (one line, exit 1) as over HTTP (409), and nothing changes.
    for active_id in (enrollment_id, data["ben_paid"].id):
        _one_line_error(
            cli("admin", "enrollments", "confirm", str(active_id)), "is active and cannot be"
        )
        again = client.post(f"/api/v1/enrollments/{active_id}/confirm/", headers=login("teacher"))
        assert again.status_code == 409
        assert again.json()["type"].endswith("/enrollment-not-pending")
    after = json.loads(cli("admin", "enrollments", "show", str(enrollment_id), "--json").stdout)
    assert after["confirmed_at"] == confirmed["confirmed_at"]


def test_confirm_failures(cli: Any, session: Any) -> None:
    data = _setup(session)
    _one_line_error(
        cli("admin", "enrollments", "confirm", str(data["expired"].id)), "cannot be confirmed"
    )
    _one_line_error(cli("admin", "enrollments", "confirm", "55555"), "No enrollment with id")
    assert cli("admin", "enrollments", "confirm", "0").exit_code == 2
    shown = json.loads(
        cli("admin", "enrollments", "show", str(data["expired"].id), "--json").stdout
    )
    assert shown["status"] == "expired"


def test_cancel_frees_the_seat(cli: Any, client: Any, session: Any) -> None:
    data = _setup(session)
    enrollment_id, course_id = data["ben_paid"].id, data["paid"].id
    seats = client.get(f"/api/v1/courses/{course_id}/").json()["seats_taken"]
    declined = cli("admin", "enrollments", "cancel", str(enrollment_id), input="n\n")
    assert declined.exit_code == 1 and "nothing was changed" in declined.stderr
    assert "ben" in declined.stderr  # the question names what would go
    assert client.get(f"/api/v1/courses/{course_id}/").json()["seats_taken"] == seats
    result = cli("admin", "enrollments", "cancel", str(enrollment_id), "--yes")
    assert result.exit_code == 0, result.stderr
    assert "cancelled enrollment" in result.stdout
    assert client.get(f"/api/v1/courses/{course_id}/").json()["seats_taken"] == seats - 1
    _one_line_error(
        cli("admin", "enrollments", "cancel", str(enrollment_id), "--yes"), "No enrollment"
    )
    remaining = json.loads(cli("admin", "enrollments", "list", "--json").stdout)
    assert enrollment_id not in [row["id"] for row in remaining["results"]]
