"""``eduflow cache``: stats, keys, get, flush and warm against the real Redis, the embedded
default's explanation, and one-line errors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from eduflow.models.users import Role
from tests.factories import make_course, make_lesson, make_user


@pytest.fixture
def catalogue(session: Any) -> dict[str, int]:
    """Three published courses with a lesson each, and a draft."""
    owner = make_user(session, Role.instructor, username="grace")
    ids = []
    for i in range(3):
        course = make_course(session, owner, title=f"Course {i}")
        make_lesson(session, course)
        ids.append(course.id)
    make_course(session, owner, title="Draft", is_published=False)
    session.commit()
    return {"first": ids[0]}


def test_stats_count_hits_and_misses_of_every_process(
    client: Any, cli: Any, catalogue: dict[str, int]
) -> None:
    from eduflow.cache.health import stats

    for _ in range(3):
        client.get("/api/v1/courses/")
    client.get(f"/api/v1/courses/{catalogue['first']}/")
    stats.flush(force=True)
    result = cli("cache", "stats", "--json")
    assert result.exit_code == 0, result.output
    rows = {r["namespace"]: r for r in json.loads(result.output)["namespaces"]}
    assert rows["courses"]["hits"] == 2 and rows["courses"]["misses"] == 1
    assert rows["courses"]["rebuilds"] == 1 and rows["courses"]["keys"] == 1
    assert rows["course"]["misses"] == 1 and rows["course"]["keys"] == 1
    assert rows["lessons"]["hits"] == 0
    table = cli("cache", "stats")
    assert table.exit_code == 0 and "courses" in table.output and "66.7%" in table.output


def test_keys_and_get_show_entries_and_whether_they_are_current(
    client: Any, cli: Any, login: Any, catalogue: dict[str, int]
) -> None:
    first = client.get(f"/api/v1/courses/{catalogue['first']}/")
    listed = cli("cache", "keys", "resp:", "--json")
    assert listed.exit_code == 0, listed.output
    keys = [row["key"] for row in json.loads(listed.output)]
    assert keys == [f"eduflow:resp:course:{catalogue['first']}"]
    shown = cli("cache", "get", f"resp:course:{catalogue['first']}", "--json")
    record = json.loads(shown.output)
    assert record["etag"] == first.headers["etag"] and record["current"] is True
    assert record["body"]["title"] == "Course 0" and record["ttl_s"] > 0
    client.patch(
        f"/api/v1/courses/{catalogue['first']}/", json={"title": "Renamed"}, headers=login("grace")
    )
    assert json.loads(cli("cache", "get", keys[0], "--json").output)["current"] is False
    table = cli("cache", "get", keys[0])
    assert table.exit_code == 0 and "Course 0" in table.output


def test_get_of_a_missing_key_is_one_clear_line(cli: Any) -> None:
    result = cli("cache", "get", "resp:course:999")
    assert result.exit_code != 0
    assert "no key 'eduflow:resp:course:999'" in result.output
    assert "Traceback" not in result.output


def test_flush_asks_first_and_then_empties_the_response_cache(
    client: Any, cli: Any, catalogue: dict[str, int]
) -> None:
    client.get("/api/v1/courses/")
    assert client.get("/api/v1/courses/").headers["x-cache"] == "hit"
    refused = cli("cache", "flush", input="n\n")
    assert refused.exit_code != 0 and "nothing was changed" in refused.output
    assert client.get("/api/v1/courses/").headers["x-cache"] == "hit"
    done = cli("cache", "flush", "--yes")
    assert done.exit_code == 0, done.output
    assert "deleted 1 keys" in done.output
    assert json.loads(cli("cache", "keys", "resp:", "--json").output) == []
    assert client.get("/api/v1/courses/").headers["x-cache"] == "miss"


def test_flush_with_a_prefix_only_touches_those_keys(
    client: Any, cli: Any, catalogue: dict[str, int]
) -> None:
    client.get("/api/v1/courses/")
    client.get(f"/api/v1/courses/{catalogue['first']}/")
    assert cli("cache", "flush", "--prefix", "resp:course:", "--yes").exit_code == 0
    left = [r["key"] for r in json.loads(cli("cache", "keys", "resp:", "--json").output)]
    assert len(left) == 1 and left[0].startswith("eduflow:resp:courses:")


def test_warm_builds_pages_courses_and_lesson_lists(
    client: Any, cli: Any, catalogue: dict[str, int]
) -> None:
    result = cli("cache", "warm", "--pages", "2")
    assert result.exit_code == 0, result.output
    assert "7 responses cached" in result.output  # 1 page + 3 courses + 3 lesson lists
    for url in ("/api/v1/courses/", f"/api/v1/lessons/?course={catalogue['first']}"):
        assert client.get(url).headers["x-cache"] == "hit", url


def test_embedded_default_explains_where_the_cache_lives(sqlite_url: str, cli: Any) -> None:
    for args in (("stats",), ("keys",), ("flush", "--yes")):
        result = cli("cache", *args)
        assert result.exit_code == 0
        assert "inside the server process" in result.output


def test_redis_down_is_one_clear_line(cli: Any, monkeypatch: Any) -> None:
    from tests.conftest import free_port, reset_process_state

    monkeypatch.setenv("EDUFLOW_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    reset_process_state()
    try:
        result = cli("cache", "stats")
    finally:
        monkeypatch.undo()
        reset_process_state()
    assert result.exit_code != 0
    assert "Redis does not answer" in result.output and "Traceback" not in result.output
