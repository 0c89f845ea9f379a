"""Pages over HTTP: following ``next`` (page links, then cursor links), deep pages, bad cursors."""

from __future__ import annotations

from typing import Any

import pytest

from eduflow.models.users import Role
from eduflow.services import paging
from tests.conftest import assert_problem_response
from tests.factories import make_course, make_enrollment, make_user

API = "/api/v1"


@pytest.fixture
def catalogue(session: Any) -> dict[str, Any]:
    owner = make_user(session, Role.instructor, username="grace")
    make_user(session, Role.admin, username="root")
    made = [make_course(session, owner, title=f"Course {i:02d}") for i in range(9)]
    student = make_user(session, username="ada")
    for course in made[:5]:
        make_enrollment(session, student, course)
    session.commit()
    return {"courses": [c.id for c in made]}


def _follow(client: Any, url: str, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    pages: list[dict[str, Any]] = []
    while url:
        response = client.get(url, headers=headers or {})
        assert response.status_code == 200, response.text
        pages.append(response.json())
        url = response.json()["next"]
    return pages


@pytest.mark.parametrize("ordering", ["-created_at", "price", "title"])
def test_next_links_switch_to_cursors_at_the_offset_limit(
    client: Any, catalogue: Any, monkeypatch: pytest.MonkeyPatch, ordering: str
) -> None:
    monkeypatch.setattr(paging, "MAX_OFFSET", 4)
    pages = _follow(client, f"{API}/courses/?page_size=2&ordering={ordering}")
    nexts = [p["next"] for p in pages[:-1]]
    assert "page=2" in nexts[0] and "page=3" in nexts[1] and "cursor=" not in nexts[1]
    assert all("cursor=" in n and "page=" not in n for n in nexts[2:])
    ids = [c["id"] for p in pages for c in p["results"]]
    assert sorted(ids) == sorted(catalogue["courses"]) and len(pages) == 5
    assert all(p["count"] == 9 and p["count_exact"] for p in pages)
    assert pages[-1]["next"] is None and pages[3]["previous"] is None  # cursor pages
    assert "page=2" in pages[2]["previous"]


def test_enrollments_and_users_follow_cursor_links(client: Any, login: Any, catalogue: Any) -> None:
    admin = login("root")
    everything = client.get(f"{API}/enrollments/?page_size=100", headers=admin).json()
    first = client.get(f"{API}/enrollments/?page_size=2", headers=admin).json()
    cursor_url = first["next"].replace("page=2", "cursor=x")
    assert client.get(cursor_url, headers=admin).status_code == 422
    walked, url = first["results"], first["next"]
    while url:
        body = client.get(url, headers=admin).json()
        walked += body["results"]
        url = body["next"]
    assert [e["id"] for e in walked] == [e["id"] for e in everything["results"]]
    assert len(walked) == 5
    users = _follow(client, f"{API}/users/?page_size=1&search=R", admin)
    assert [u["results"][0]["username"] for u in users] == ["grace", "root"]


def test_deep_pages_and_bad_cursors_are_problems(
    client: Any, catalogue: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(paging, "MAX_OFFSET", 4)
    deep = client.get(f"{API}/courses/?page=4&page_size=2")
    assert deep.status_code == 400
    assert_problem_response(deep)
    assert deep.json()["type"].endswith("/page-too-deep") and "cursor" in deep.json()["detail"]
    allowed = client.get(f"{API}/courses/?page=3&page_size=2")  # offset 4: still allowed
    assert allowed.status_code == 200 and len(allowed.json()["results"]) == 2
    past_the_end = client.get(f"{API}/courses/?page=30&page_size=2", headers={})
    assert past_the_end.status_code == 400  # deeper than the limit, whatever the count
    monkeypatch.setattr(paging, "MAX_OFFSET", 100_000)
    beyond = client.get(f"{API}/courses/?page=30&page_size=2").json()
    assert beyond["results"] == [] and beyond["next"] is None and "page=5" in beyond["previous"]
    for url in (
        f"{API}/courses/?cursor=garbage",
        f"{API}/courses/?cursor=",
        f"{API}/courses/?cursor=abc&page=2",
        f"{API}/courses/?cursor={'a' * 501}",
    ):
        response = client.get(url)
        assert response.status_code == 422, url
        assert_problem_response(response)


def test_a_cursor_of_another_ordering_is_a_422(client: Any, catalogue: Any) -> None:
    import base64
    import json

    token = base64.urlsafe_b64encode(json.dumps(["price", ["1.00", 3]]).encode()).decode()
    response = client.get(f"{API}/courses/?cursor={token.rstrip('=')}")
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "cursor"
    good = base64.urlsafe_b64encode(json.dumps(["-created_at", ["x", 3]]).encode()).decode()
    assert client.get(f"{API}/courses/?cursor={good}").status_code == 422
