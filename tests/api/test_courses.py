"""Courses over HTTP: CRUD, representation, lists (pagination, search, ordering, filters),
validation problems, ETags and a constant number of queries per list."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event

from eduflow.models.users import Role
from tests.factories import make_course, make_enrollment, make_lesson, make_user

API = "/api/v1"


@pytest.fixture
def people(session: Any) -> dict[str, Any]:
    """An instructor, another instructor, a student and an admin (committed)."""
    users = {
        "owner": make_user(session, Role.instructor, username="grace"),
        "other": make_user(session, Role.instructor, username="alan"),
        "student": make_user(session, Role.student, username="ada"),
        "admin": make_user(session, Role.admin, username="root"),
    }
    session.commit()
    return users


def test_create_course_returns_the_full_representation(
    client: Any, login: Any, people: Any
) -> None:
    response = client.post(
        f"{API}/courses/",
        json={"title": "  Intro to Python  ", "price": "19.9", "capacity": 3},
        headers=login("grace"),
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["location"] == f"{API}/courses/{body['id']}/"
    assert body["title"] == "Intro to Python"
    assert body["price"] == "19.90"
    assert body["owner"] == "grace"
    assert body["is_published"] is False
    assert body["capacity"] == 3
    assert body["seats_taken"] == 0 and body["lessons_count"] == 0
    assert body["description"] == ""
    assert body["created_at"] and body["updated_at"]
    shown = client.get(f"{API}/courses/{body['id']}/", headers=login("grace")).json()
    assert shown == body


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"title": "ab"}, "title"),
        ({"title": "   abc   " + " " * 10 + "x" * 0}, None),
        ({"title": "x" * 201}, "title"),
        ({"title": "     "}, "title"),
        ({"title": "Good title", "price": "-0.01"}, "price"),
        ({"title": "Good title", "price": "1.234"}, "price"),
        ({"title": "Good title", "price": "1e12"}, "price"),
        ({"title": "Good title", "price": "NaN"}, "price"),
        ({"title": "Good title", "capacity": 0}, "capacity"),
        ({"title": "Good title", "capacity": 10**12}, "capacity"),
        ({"title": "Good title", "owner": "ada"}, "owner"),
        ({"title": "Good title", "is_published": "maybe"}, "is_published"),
        ({"price": "1.00"}, "title"),
    ],
)
def test_course_validation_names_the_field(
    client: Any, login: Any, people: Any, payload: dict[str, Any], field: str | None
) -> None:
    response = client.post(f"{API}/courses/", json=payload, headers=login("grace"))
    if field is None:
        assert response.status_code == 201
        assert response.json()["title"] == "abc"
        return
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 422
    assert field in [e["field"] for e in problem["errors"]]
    assert client.get(f"{API}/courses/", headers=login("grace")).json()["count"] == 0


def test_price_accepts_numbers_and_keeps_two_decimals(client: Any, login: Any, people: Any) -> None:
    headers = login("grace")
    for sent, shown in [(0, "0.00"), (12.5, "12.50"), ("99999999.99", "99999999.99")]:
        response = client.post(
            f"{API}/courses/", json={"title": "Priced", "price": sent}, headers=headers
        )
        assert response.status_code == 201, response.text
        assert response.json()["price"] == shown


def test_patch_put_and_delete(client: Any, login: Any, people: Any, session: Any) -> None:
    headers = login("grace")
    course = client.post(
        f"{API}/courses/", json={"title": "Original", "capacity": 5}, headers=headers
    ).json()
    url = f"{API}/courses/{course['id']}/"
    patched = client.patch(url, json={"price": "5", "is_published": True}, headers=headers)
    assert patched.status_code == 200
    assert patched.json()["price"] == "5.00" and patched.json()["title"] == "Original"
    assert patched.json()["updated_at"] >= course["updated_at"]
    assert client.patch(url, json={"title": None}, headers=headers).status_code == 422
    assert client.patch(url, json={"capacity": None}, headers=headers).json()["capacity"] is None
    replaced = client.put(url, json={"title": "Replaced"}, headers=headers)
    assert replaced.status_code == 200
    assert replaced.json()["price"] == "0.00" and replaced.json()["is_published"] is False
    assert client.put(url, json={"description": "no title"}, headers=headers).status_code == 422
    assert client.delete(url, headers=headers).status_code == 204
    assert client.get(url, headers=headers).status_code == 404
    assert client.delete(url, headers=headers).status_code == 404


def test_capacity_cannot_drop_below_seats_taken(
    client: Any, login: Any, people: Any, session: Any
) -> None:
    course = make_course(session, owner=people["owner"], capacity=5)
    for _ in range(3):
        make_enrollment(session, make_user(session), course)
    session.commit()
    url = f"{API}/courses/{course.id}/"
    response = client.patch(url, json={"capacity": 2}, headers=login("grace"))
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "capacity"
    assert client.patch(url, json={"capacity": 3}, headers=login("grace")).status_code == 200


def test_delete_takes_lessons_and_enrollments_along(
    client: Any, login: Any, people: Any, session: Any
) -> None:
    course = make_course(session, owner=people["owner"])
    lesson = make_lesson(session, course)
    enrollment = make_enrollment(session, people["student"], course)
    session.commit()
    assert client.delete(f"{API}/courses/{course.id}/", headers=login("root")).status_code == 204
    assert client.get(f"{API}/lessons/{lesson.id}/", headers=login("root")).status_code == 404
    assert (
        client.get(f"{API}/enrollments/{enrollment.id}/", headers=login("root")).status_code == 404
    )
    schema = client.get("/api/schema/").json()
    description = schema["paths"]["/api/v1/courses/{course_id}/"]["delete"]["description"]
    assert "lessons" in description and "enrollments" in description


def _titles(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [c["title"] for c in response.json()["results"]]


def test_list_visibility_per_role(client: Any, login: Any, people: Any, session: Any) -> None:
    make_course(session, owner=people["owner"], title="Published")
    make_course(session, owner=people["owner"], title="Grace draft", is_published=False)
    make_course(session, owner=people["other"], title="Alan draft", is_published=False)
    session.commit()
    assert sorted(_titles(client.get(f"{API}/courses/"))) == ["Published"]
    assert sorted(_titles(client.get(f"{API}/courses/", headers=login("ada")))) == ["Published"]
    assert sorted(_titles(client.get(f"{API}/courses/", headers=login("grace")))) == [
        "Grace draft",
        "Published",
    ]
    assert len(_titles(client.get(f"{API}/courses/", headers=login("root")))) == 3


def test_pagination_with_absolute_links(client: Any, session: Any, people: Any) -> None:
    for i in range(25):
        make_course(session, owner=people["owner"], title=f"Course {i:02d}")
    session.commit()
    first = client.get(f"{API}/courses/?ordering=title").json()
    assert first["count"] == 25 and len(first["results"]) == 20
    assert first["previous"] is None
    # Links are on EDUFLOW_PUBLIC_BASE_URL, whatever Host the request named.
    assert first["next"].startswith("http://localhost:8000/api/v1/courses/?")
    second = client.get(first["next"]).json()
    assert [c["title"] for c in second["results"]] == [f"Course {i}" for i in range(20, 25)]
    assert second["next"] is None
    assert client.get(second["previous"]).json() == first
    small = client.get(f"{API}/courses/?page_size=7&page=4").json()
    assert len(small["results"]) == 4 and small["next"] is None
    empty = client.get(f"{API}/courses/?page=9").json()
    assert empty["results"] == [] and empty["count"] == 25
    for bad in ("page=0", "page_size=0", "page_size=101", "page=x"):
        response = client.get(f"{API}/courses/?{bad}")
        assert response.status_code == 422, bad
        assert response.json()["errors"][0]["field"] in ("page", "page_size")


def test_search_ordering_and_filters(client: Any, login: Any, session: Any, people: Any) -> None:
    make_course(session, owner=people["owner"], title="Python basics", price=30)
    make_course(
        session, owner=people["owner"], title="Cooking", description="With PYTHON snakes", price=10
    )
    make_course(session, owner=people["other"], title="Rust", price=20)
    make_course(session, owner=people["other"], title="100%_sure", price=5, is_published=False)
    session.commit()
    assert sorted(_titles(client.get(f"{API}/courses/?search=python"))) == [
        "Cooking",
        "Python basics",
    ]
    assert _titles(client.get(f"{API}/courses/?search=%25")) == []  # literal %, not a wildcard
    admin = login("root")
    assert _titles(client.get(f"{API}/courses/?search=0%25_", headers=admin)) == ["100%_sure"]
    assert _titles(client.get(f"{API}/courses/?ordering=price")) == [
        "Cooking",
        "Rust",
        "Python basics",
    ]
    assert _titles(client.get(f"{API}/courses/?ordering=-price")) == [
        "Python basics",
        "Rust",
        "Cooking",
    ]
    assert _titles(client.get(f"{API}/courses/?ordering=-title")) == [
        "Rust",
        "Python basics",
        "Cooking",
    ]
    assert _titles(client.get(f"{API}/courses/?ordering=created_at")) == [
        "Python basics",
        "Cooking",
        "Rust",
    ]
    assert _titles(client.get(f"{API}/courses/")) == ["Rust", "Cooking", "Python basics"]
    assert _titles(client.get(f"{API}/courses/?owner=alan")) == ["Rust"]
    assert _titles(client.get(f"{API}/courses/?owner=nobody")) == []
    assert _titles(client.get(f"{API}/courses/?is_published=false", headers=admin)) == ["100%_sure"]
    assert _titles(client.get(f"{API}/courses/?is_published=false")) == []
    for bad in ("ordering=owner", "ordering=price;drop", "is_published=maybe"):
        response = client.get(f"{API}/courses/?{bad}")
        assert response.status_code == 422, bad
        assert response.headers["content-type"] == "application/problem+json"


def test_invisible_draft_is_404_everywhere(
    client: Any, login: Any, session: Any, people: Any
) -> None:
    draft = make_course(session, owner=people["owner"], is_published=False)
    session.commit()
    url = f"{API}/courses/{draft.id}/"
    for headers in ({}, login("ada"), login("alan")):
        assert client.get(url, headers=headers).status_code == 404
    assert client.get(url, headers=login("grace")).status_code == 200
    assert client.get(f"{API}/courses/999999/").status_code == 404
    assert client.get(f"{API}/courses/0/").status_code == 422
    assert client.get(f"{API}/courses/99999999999/").status_code == 422


def test_etag_and_conditional_get(client: Any, login: Any, session: Any, people: Any) -> None:
    course = make_course(session, owner=people["owner"])
    session.commit()
    url = f"{API}/courses/{course.id}/"
    first = client.get(url)
    tag = first.headers["etag"]
    again = client.get(url, headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == tag
    assert client.get(url, headers={"If-None-Match": f'"other", W/{tag}'}).status_code == 304
    assert client.get(url, headers={"If-None-Match": '"stale"'}).status_code == 200
    listing = client.get(f"{API}/courses/")
    assert (
        client.get(
            f"{API}/courses/", headers={"If-None-Match": listing.headers["etag"]}
        ).status_code
        == 304
    )

    client.patch(url, json={"title": "New title"}, headers=login("grace"))
    changed = client.get(url, headers={"If-None-Match": tag})
    assert changed.status_code == 200 and changed.json()["title"] == "New title"
    assert changed.headers["etag"] != tag
    relisted = client.get(f"{API}/courses/", headers={"If-None-Match": listing.headers["etag"]})
    assert relisted.status_code == 200


def test_list_queries_do_not_grow_with_page_size(client: Any, session: Any, people: Any) -> None:
    from eduflow.db import get_engine

    for i in range(60):
        course = make_course(session, owner=make_user(session, Role.instructor), title=f"C{i}")
        make_lesson(session, course)
        make_enrollment(session, people["student"], course)
    session.commit()
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    engine = get_engine()
    event.listen(engine, "before_cursor_execute", count)
    try:
        counts = []
        for size in (1, 10, 60):
            statements.clear()
            body = client.get(f"{API}/courses/?page_size={size}").json()
            assert len(body["results"]) == size
            assert all(c["lessons_count"] == 1 and c["seats_taken"] == 1 for c in body["results"])
            counts.append(len(statements))
        assert counts[0] == counts[1] == counts[2] <= 3, counts
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_price_is_decimal_end_to_end(client: Any, login: Any, people: Any, session: Any) -> None:
    from eduflow.models import Course

    body = client.post(
        f"{API}/courses/", json={"title": "Decimal", "price": "0.10"}, headers=login("grace")
    ).json()
    session.expire_all()
    stored = session.get(Course, body["id"])
    assert stored.price == Decimal("0.10")
    assert isinstance(stored.price, Decimal)
