"""Lessons over HTTP: ordering, counters seen through the course, validation, ETags."""

from __future__ import annotations

from typing import Any

import pytest

from eduflow.models.users import Role
from tests.factories import make_course, make_user

API = "/api/v1"


@pytest.fixture
def owner(session: Any, login: Any) -> dict[str, Any]:
    user = make_user(session, Role.instructor, username="grace")
    course = make_course(session, owner=user)
    session.commit()
    return {"course": course, "headers": login("grace")}


def test_lessons_are_ordered_and_counted(client: Any, owner: Any) -> None:
    course, headers = owner["course"], owner["headers"]
    made = []
    for title, order in (("Third", 3), ("First", None), ("Second", 2)):
        body = {"course": course.id, "title": title}
        if order:
            body["order_index"] = order
        response = client.post(f"{API}/lessons/", json=body, headers=headers)
        assert response.status_code == 201, response.text
        made.append(response.json())
    assert made[1]["order_index"] == 4  # appended after the last one
    client.patch(f"{API}/lessons/{made[1]['id']}/", json={"order_index": 1}, headers=headers)
    listed = client.get(f"{API}/lessons/?course={course.id}").json()
    assert [lesson["title"] for lesson in listed["results"]] == ["First", "Second", "Third"]
    assert listed["count"] == 3
    assert client.get(f"{API}/courses/{course.id}/").json()["lessons_count"] == 3
    assert client.delete(f"{API}/lessons/{made[0]['id']}/", headers=headers).status_code == 204
    assert client.get(f"{API}/courses/{course.id}/").json()["lessons_count"] == 2
    assert client.get(f"{API}/lessons/{made[0]['id']}/").status_code == 404
    assert client.get(f"{API}/lessons/?course=999999").status_code == 404
    everything = client.get(f"{API}/lessons/").json()
    assert everything["count"] == 2


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"title": "ab"}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"title": "Fine", "duration_min": 0}, "duration_min"),
        ({"title": "Fine", "duration_min": -5}, "duration_min"),
        ({"title": "Fine", "order_index": 0}, "order_index"),
        ({"title": "Fine", "order_index": 10**12}, "order_index"),
        ({"title": "Fine", "duration_min": "long"}, "duration_min"),
        ({"title": "Fine", "extra": 1}, "extra"),
        ({"title": "Fine", "course": 0}, "course"),
        ({"title": "Fine", "course": None}, "course"),
    ],
)
def test_lesson_validation_names_the_field(
    client: Any, owner: Any, payload: dict[str, Any], field: str
) -> None:
    body = {"course": owner["course"].id, **payload}
    response = client.post(f"{API}/lessons/", json=body, headers=owner["headers"])
    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in response.json()["errors"]]
    assert client.get(f"{API}/courses/{owner['course'].id}/").json()["lessons_count"] == 0


def test_patch_and_put_rules(client: Any, owner: Any, session: Any) -> None:
    course, headers = owner["course"], owner["headers"]
    lesson = client.post(
        f"{API}/lessons/", json={"course": course.id, "title": "Loops"}, headers=headers
    ).json()
    url = f"{API}/lessons/{lesson['id']}/"
    assert client.patch(url, json={"title": None}, headers=headers).status_code == 422
    assert client.patch(url, json={"course": course.id}, headers=headers).status_code == 422
    other = make_course(session)
    session.commit()
    moved = client.put(url, json={"course": other.id, "title": "Moved"}, headers=headers)
    # A well-formed body that contradicts the stored lesson: a conflict, not invalid input.
    assert moved.status_code == 409 and moved.json()["errors"][0]["field"] == "course"
    put = client.put(
        url, json={"course": course.id, "title": "Loops 2", "duration_min": 9}, headers=headers
    )
    assert put.status_code == 200
    assert put.json()["duration_min"] == 9 and put.json()["order_index"] == 1


def test_lesson_etag_changes_with_writes(client: Any, owner: Any) -> None:
    course, headers = owner["course"], owner["headers"]
    lesson = client.post(
        f"{API}/lessons/",
        json={"course": course.id, "title": "Tagged", "content": "Body"},
        headers=headers,
    ).json()
    url = f"{API}/lessons/{lesson['id']}/"
    tag = client.get(url).headers["etag"]
    assert client.get(url, headers={"If-None-Match": tag}).status_code == 304
    list_tag = client.get(f"{API}/lessons/?course={course.id}").headers["etag"]
    client.patch(url, json={"title": "Retitled"}, headers=headers)
    assert client.get(url, headers={"If-None-Match": tag}).status_code == 200
    relisted = client.get(f"{API}/lessons/?course={course.id}", headers={"If-None-Match": list_tag})
    assert relisted.status_code == 200
    # the owner (who reads the content) and an anonymous client see different bytes
    assert client.get(url, headers=headers).headers["etag"] != client.get(url).headers["etag"]
