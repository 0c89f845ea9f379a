"""``eduflow admin courses``: happy paths, --json shapes, failures, and the API seeing changes."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select

from eduflow.db import session_scope
from eduflow.models import Course, Enrollment, Lesson
from eduflow.models.users import Role
from tests.factories import make_course, make_enrollment, make_lesson, make_user

COURSE_KEYS = {
    "id", "title", "description", "price", "is_published", "capacity", "seats_taken",
    "waitlist_count", "owner", "lessons_count", "created_at", "updated_at",
}  # fmt: skip


def _count(model: Any) -> int:
    with session_scope() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def _one_line_error(result: Any, text: str) -> None:
    assert result.exit_code == 1, result.stdout
    assert text in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def _catalog(session: Any) -> dict[str, Any]:
    ada = make_user(session, Role.instructor, username="ada")
    bob = make_user(session, Role.instructor, username="bob")
    courses = {
        "py": make_course(session, ada, title="Python basics", price="19.90"),
        "draft": make_course(session, ada, title="Secret draft", is_published=False),
        "sql": make_course(session, bob, title="SQL joins", description="python-free"),
    }
    session.commit()
    return {"ada": ada, "bob": bob, **courses}


def test_list_filters_and_json(cli: Any, session: Any) -> None:
    data = _catalog(session)
    everything = json.loads(cli("admin", "courses", "list", "--json").stdout)
    assert everything["count"] == 3  # drafts included: the operator acts as an admin
    assert all(set(row) == COURSE_KEYS for row in everything["results"])
    assert everything["results"][0]["id"] == data["sql"].id  # newest first

    def titles(*args: str) -> list[str]:
        result = cli("admin", "courses", "list", *args, "--json", "--ordering", "title")
        assert result.exit_code == 0, result.stderr
        return [row["title"] for row in json.loads(result.stdout)["results"]]

    assert titles("--owner", "ada") == ["Python basics", "Secret draft"]
    assert titles("--owner", str(data["bob"].id)) == ["SQL joins"]
    assert titles("--draft") == ["Secret draft"]
    assert titles("--published") == ["Python basics", "SQL joins"]
    assert titles("--search", "PYTHON") == ["Python basics", "SQL joins"]
    assert titles("--published", "--owner", "ada", "--search", "basics") == ["Python basics"]
    table = cli("admin", "courses", "list", "--limit", "1")
    assert table.stdout.splitlines()[0].startswith("id\ttitle\towner\tprice")
    assert "showing 1 of 3" in table.stderr


def test_list_failures(cli: Any) -> None:
    _one_line_error(cli("admin", "courses", "list", "--owner", "nobody"), "No user matches")
    bad = cli("admin", "courses", "list", "--ordering", "popularity")
    assert bad.exit_code == 2 and "is not one of" in bad.stderr


def test_show(cli: Any, session: Any) -> None:
    data = _catalog(session)
    result = cli("admin", "courses", "show", str(data["draft"].id), "--json")
    assert result.exit_code == 0, result.stderr
    course = json.loads(result.stdout)
    assert set(course) == COURSE_KEYS
    assert (course["title"], course["owner"], course["price"]) == ("Secret draft", "ada", "0.00")
    assert "Secret draft" in cli("admin", "courses", "show", str(data["draft"].id)).stdout
    _one_line_error(cli("admin", "courses", "show", "999999"), "No course with id 999999")
    assert cli("admin", "courses", "show", "abc").exit_code == 2


def test_create(cli: Any, client: Any, session: Any) -> None:
    make_user(session, Role.instructor, username="ada")
    session.commit()
    result = cli(
        "admin", "courses", "create", "--owner", "ada", "--title", "  Intro to SQL  ",
        "--description", "Joins and more", "--price", "19.9", "--capacity", "30", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    course = json.loads(result.stdout)
    assert set(course) == COURSE_KEYS
    assert course["title"] == "Intro to SQL"
    assert (course["price"], course["capacity"], course["owner"]) == ("19.90", 30, "ada")
    assert course["is_published"] is False  # a draft unless --publish
    assert client.get(f"/api/v1/courses/{course['id']}/").status_code == 404
    published = cli(
        "admin", "courses", "create", "--owner", "ada", "--title", "Open course", "--publish"
    )
    assert published.exit_code == 0 and "(published)" in published.stdout
    assert client.get("/api/v1/courses/").json()["count"] == 1


def test_create_failures_write_nothing(cli: Any, session: Any) -> None:
    make_user(session, Role.instructor, username="ada")
    make_user(session, Role.student, username="stu")
    session.commit()
    base = ("admin", "courses", "create", "--title", "A fine title")
    _one_line_error(cli(*base, "--owner", "ghost"), "No user matches")
    _one_line_error(cli(*base, "--owner", "stu"), "instructor or admin")
    _one_line_error(cli("admin", "courses", "create", "--owner", "ada", "--title", " x "), "title")
    _one_line_error(cli(*base, "--owner", "ada", "--price", "-1"), "price")
    _one_line_error(cli(*base, "--owner", "ada", "--price", "1.999"), "price")
    _one_line_error(cli(*base, "--owner", "ada", "--price", "cheap"), "price")
    _one_line_error(cli(*base, "--owner", "ada", "--capacity", "0"), "capacity")
    assert _count(Course) == 0


def test_publish_is_visible_to_the_next_anonymous_cached_read(
    cli: Any, client: Any, session: Any
) -> None:
    data = _catalog(session)
    draft_id = data["draft"].id
    first = client.get("/api/v1/courses/")  # warms the catalogue cache
    assert draft_id not in [c["id"] for c in first.json()["results"]]
    assert client.get("/api/v1/courses/").json() == first.json()
    result = cli("admin", "courses", "publish", str(draft_id))
    assert result.exit_code == 0, result.stderr
    assert "is published" in result.stdout
    after = client.get("/api/v1/courses/", headers={"If-None-Match": first.headers["etag"]})
    assert after.status_code == 200
    assert draft_id in [c["id"] for c in after.json()["results"]]
    assert client.get(f"/api/v1/courses/{draft_id}/").json()["is_published"] is True
    assert cli("admin", "courses", "unpublish", str(draft_id)).exit_code == 0
    assert draft_id not in [c["id"] for c in client.get("/api/v1/courses/").json()["results"]]
    assert client.get(f"/api/v1/courses/{draft_id}/").status_code == 404
    _one_line_error(cli("admin", "courses", "publish", "424242"), "No course with id 424242")
    _one_line_error(cli("admin", "courses", "unpublish", "424242"), "No course with id 424242")


def test_transfer(cli: Any, client: Any, session: Any) -> None:
    data = _catalog(session)
    make_user(session, Role.student, username="stu")
    session.commit()
    course_id = str(data["py"].id)
    client.get(f"/api/v1/courses/{course_id}/")  # cached with the old owner
    result = cli("admin", "courses", "transfer", course_id, "--to", "bob")
    assert result.exit_code == 0, result.stderr
    assert "now belongs to bob" in result.stdout
    assert client.get(f"/api/v1/courses/{course_id}/").json()["owner"] == "bob"
    _one_line_error(cli("admin", "courses", "transfer", course_id, "--to", "stu"), "instructor")
    _one_line_error(cli("admin", "courses", "transfer", course_id, "--to", "ghost"), "ghost")
    _one_line_error(cli("admin", "courses", "transfer", "999", "--to", "ada"), "No course")
    shown = json.loads(cli("admin", "courses", "show", course_id, "--json").stdout)
    assert shown["owner"] == "bob"


def test_delete_asks_and_reports_what_goes(cli: Any, session: Any) -> None:
    data = _catalog(session)
    course = data["py"]
    for _ in range(2):
        make_lesson(session, course)
    for _ in range(3):
        make_enrollment(session, make_user(session), course)
    session.commit()
    declined = cli("admin", "courses", "delete", str(course.id), input="n\n")
    assert "2 lessons and 3 enrollments" in declined.stderr
    _one_line_error(
        cli("admin", "courses", "delete", str(course.id), input=""), "nothing was changed"
    )
    assert declined.exit_code == 1
    assert (_count(Course), _count(Lesson), _count(Enrollment)) == (3, 2, 3)
    accepted = cli("admin", "courses", "delete", str(course.id), input="y\n")
    assert accepted.exit_code == 0, accepted.stderr
    assert "with 2 lessons and 3 enrollments" in accepted.stdout
    assert (_count(Course), _count(Lesson), _count(Enrollment)) == (2, 0, 0)
    forced = cli("admin", "courses", "delete", str(data["sql"].id), "--yes")
    assert forced.exit_code == 0 and _count(Course) == 1
    _one_line_error(cli("admin", "courses", "delete", str(course.id), "--yes"), "No course")
