"""The catalogue's response cache over HTTP: hits without database work, freshness after
every kind of write (anonymous and signed-in, list and detail, ETag), audiences that never
leak drafts or lesson content, and one rebuild for a burst of concurrent misses."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest

from eduflow.models.users import Role
from tests.factories import make_course, make_enrollment, make_lesson, make_user
from tests.queries import counted_queries

API = "/api/v1"


@pytest.fixture
def world(session: Any) -> dict[str, Any]:
    """grace owns a free course (with a lesson), a paid one and a draft; ada and bob are
    students (ada actively enrolled in the free course), root is an admin."""
    grace = make_user(session, Role.instructor, username="grace")
    alan = make_user(session, Role.instructor, username="alan")
    ada = make_user(session, Role.student, username="ada")
    make_user(session, Role.student, username="bob")
    make_user(session, Role.admin, username="root")
    free = make_course(session, grace, title="Free course", capacity=10)
    paid = make_course(session, grace, title="Paid course", price="25.00", capacity=10)
    draft = make_course(session, grace, title="Secret draft", is_published=False)
    make_course(session, alan, title="Alan's draft", is_published=False)
    lesson = make_lesson(session, free, title="First steps", content="free secret")
    make_lesson(session, paid, title="Paid lesson", content="paid secret")
    make_lesson(session, draft, title="Draft lesson", content="draft secret")
    make_enrollment(session, ada, free)
    session.commit()
    return {"free": free.id, "paid": paid.id, "draft": draft.id, "lesson": lesson.id}


def test_anonymous_hit_does_no_database_work_and_honours_if_none_match(
    client: Any, world: Any
) -> None:
    url = f"{API}/courses/?ordering=title"
    first = client.get(url)
    assert first.headers["x-cache"] == "miss"
    with counted_queries() as statements:
        second = client.get(url)
        not_modified = client.get(url, headers={"If-None-Match": first.headers["etag"]})
    assert statements == []
    assert second.headers["x-cache"] == "hit"
    assert second.content == first.content and second.headers["etag"] == first.headers["etag"]
    assert second.headers["x-request-id"] and "x-response-time-ms" in second.headers
    assert not_modified.status_code == 304 and not_modified.content == b""
    assert [c["title"] for c in second.json()["results"]] == ["Free course", "Paid course"]


def test_signed_in_hit_does_no_catalogue_query(client: Any, login: Any, world: Any) -> None:
    headers = login("ada")
    url = f"{API}/lessons/?course={world['free']}"
    assert client.get(url, headers=headers).headers["x-cache"] == "miss"
    client.get(f"{API}/auth/me/", headers=headers)  # warms the auth state
    with counted_queries() as statements:
        hit = client.get(url, headers=headers)
    assert hit.headers["x-cache"] == "hit"
    assert not [s for s in statements if "courses" in s or "lessons" in s], statements
    assert hit.json()["results"][0]["content"] == "free secret"


# --------------------------------------------------------------------------- freshness

READERS = ("anonymous", "ada", "grace", "root")


def _urls(world: dict[str, Any]) -> list[str]:
    return [
        f"{API}/courses/",
        f"{API}/courses/?ordering=title&page_size=1&page=2",
        f"{API}/courses/{world['free']}/",
        f"{API}/courses/{world['paid']}/",
        f"{API}/courses/{world['draft']}/",
        f"{API}/lessons/?course={world['free']}",
        f"{API}/lessons/?course={world['paid']}",
        f"{API}/lessons/",
    ]


def _snapshot(client: Any, headers: dict[str, dict[str, str]], urls: list[str]) -> dict[Any, Any]:
    seen = {}
    for reader in READERS:
        for url in urls:
            r = client.get(url, headers=headers[reader])
            # Problem bodies carry their request id: compare their status only.
            body = r.content if r.status_code == 200 else b""
            seen[(reader, url)] = (r.status_code, r.headers.get("etag"), body)
    return seen


def _api(client: Any, method: str, url: str, headers: dict[str, str], **kw: Any) -> Any:
    response = client.request(method, f"{API}{url}", headers=headers, **kw)
    assert response.status_code < 300, response.text
    return response


# Each write: (who, method, url template, json) and the URLs whose representation changes.
WRITES: dict[str, tuple[str, str, str, dict[str, Any] | None, list[str]]] = {
    "course create": (
        "grace",
        "POST",
        "/courses/",
        {"title": "New", "is_published": True},
        ["/courses/"],
    ),
    "course update": (
        "grace",
        "PATCH",
        "/courses/{free}/",
        {"title": "Renamed"},
        ["/courses/", "/courses/{free}/"],
    ),
    "course replace": (
        "root",
        "PUT",
        "/courses/{paid}/",
        {"title": "Replaced"},
        ["/courses/", "/courses/{paid}/"],
    ),
    "course publish": (
        "grace",
        "PATCH",
        "/courses/{draft}/",
        {"is_published": True},
        ["/courses/", "/courses/{draft}/", "/lessons/"],
    ),
    "course unpublish": (
        "grace",
        "PATCH",
        "/courses/{free}/",
        {"is_published": False},
        ["/courses/", "/courses/{free}/", "/lessons/?course={free}"],
    ),
    "course delete": (
        "grace",
        "DELETE",
        "/courses/{free}/",
        None,
        ["/courses/", "/courses/{free}/", "/lessons/?course={free}", "/lessons/"],
    ),
    "lesson create": (
        "grace",
        "POST",
        "/lessons/",
        {"course": "{free}", "title": "Two"},
        ["/courses/", "/courses/{free}/", "/lessons/?course={free}", "/lessons/"],
    ),
    "lesson update": (
        "grace",
        "PATCH",
        "/lessons/{lesson}/",
        {"title": "Retitled"},
        ["/lessons/?course={free}", "/lessons/"],
    ),
    "lesson delete": (
        "grace",
        "DELETE",
        "/lessons/{lesson}/",
        None,
        ["/courses/", "/courses/{free}/", "/lessons/?course={free}", "/lessons/"],
    ),
    "enrollment create": (
        "bob",
        "POST",
        "/enrollments/",
        {"course": "{free}"},
        ["/courses/", "/courses/{free}/"],
    ),
    "enrollment cancel": (
        "ada",
        "DELETE",
        "/enrollments/{ada_enrollment}/",
        None,
        ["/courses/", "/courses/{free}/", "/lessons/?course={free}"],
    ),
}


@pytest.mark.parametrize("kind", list(WRITES))
def test_read_after_write_is_fresh_for_every_audience(
    client: Any, login: Any, world: dict[str, Any], kind: str
) -> None:
    """After each kind of write, every cached read equals a read from an empty cache,
    and the representations the write changed have a new ETag."""
    from eduflow.cache.stores import get_redis

    headers = {"anonymous": {}, **{name: login(name) for name in READERS[1:]}}
    headers["bob"] = login("bob")
    world = {
        **world,
        "ada_enrollment": client.get(f"{API}/enrollments/", headers=headers["ada"]).json()[
            "results"
        ][0]["id"],
    }
    urls = _urls(world)
    _snapshot(client, headers, urls)  # fills the cache
    before = _snapshot(client, headers, urls)
    assert {r[1] for r in before.values()} - {None}, "the catalogue is readable"

    who, method, template, body, changed = WRITES[kind]
    json = (
        {
            k: (int(v.format(**world)) if isinstance(v, str) and "{" in v else v)
            for k, v in body.items()
        }
        if body is not None
        else None
    )
    _api(client, method, template.format(**world), headers[who], json=json)

    after = _snapshot(client, headers, urls)
    redis = get_redis()
    assert redis is not None
    redis.flushdb()
    truth = _snapshot(client, headers, urls)
    assert after == truth
    for path in changed:
        url = f"{API}{path.format(**world)}"
        assert any(before[(r, url)] != after[(r, url)] for r in READERS), (
            f"{kind} should change {url}"
        )
        for reader in READERS:
            if before[(reader, url)][0] == after[(reader, url)][0] == 200 and (
                before[(reader, url)][2] != after[(reader, url)][2]
            ):
                assert before[(reader, url)][1] != after[(reader, url)][1]


def test_confirming_an_enrollment_shows_the_lesson_content_at_once(
    client: Any, login: Any, world: dict[str, Any]
) -> None:
    ada = login("ada")
    url = f"{API}/lessons/?course={world['paid']}"
    enrollment = client.post(f"{API}/enrollments/", json={"course": world["paid"]}, headers=ada)
    assert enrollment.json()["status"] == "pending"
    for _ in range(2):
        assert client.get(url, headers=ada).json()["results"][0]["content"] is None
    confirm = client.post(
        f"{API}/enrollments/{enrollment.json()['id']}/confirm/", headers=login("grace")
    )
    assert confirm.status_code == 200, confirm.text
    assert client.get(url, headers=ada).json()["results"][0]["content"] == "paid secret"
    assert client.get(url).json()["results"][0]["content"] is None


# --------------------------------------------------------------------------- audiences


def test_a_cached_draft_is_never_served_to_anyone_but_its_owner_and_admins(
    client: Any, login: Any, world: dict[str, Any]
) -> None:
    url = f"{API}/courses/{world['draft']}/"
    grace = login("grace")
    assert client.get(url, headers=grace).status_code == 200
    assert client.get(url, headers=grace).headers["x-cache"] == "hit"
    for _ in range(2):
        assert client.get(url).status_code == 404
        assert client.get(url, headers=login("ada")).status_code == 404
        assert client.get(url, headers=login("alan")).status_code == 404
    assert client.get(url, headers=login("root")).json()["title"] == "Secret draft"
    lessons = f"{API}/lessons/?course={world['draft']}"
    assert client.get(lessons, headers=grace).status_code == 200
    assert client.get(lessons).status_code == 404
    assert client.get(lessons, headers=login("alan")).status_code == 404


def test_a_cached_draft_is_not_served_to_its_owner_once_demoted(
    client: Any, login: Any, world: dict[str, Any]
) -> None:
    url = f"{API}/courses/{world['draft']}/"
    assert client.get(url, headers=login("grace")).status_code == 200
    assert client.get(url, headers=login("grace")).headers["x-cache"] == "hit"
    root = login("root")
    users = client.get(f"{API}/users/?search=grace", headers=root).json()["results"]
    patch = client.patch(f"{API}/users/{users[0]['id']}/", json={"role": "student"}, headers=root)
    assert patch.status_code == 200
    assert client.get(url, headers=login("grace")).status_code == 404


@pytest.mark.parametrize("first", ["grace", "root"])
def test_a_list_with_drafts_is_not_shared_with_other_callers(
    client: Any, login: Any, world: dict[str, Any], first: str
) -> None:
    def titles(headers: dict[str, str]) -> set[str]:
        return {
            c["title"] for c in client.get(f"{API}/courses/", headers=headers).json()["results"]
        }

    assert "Secret draft" in titles(login(first))
    assert "Secret draft" in titles(login(first))
    published = {"Free course", "Paid course"}
    assert titles({}) == published
    assert titles(login("ada")) == published
    assert titles(login("alan")) == published | {"Alan's draft"}
    assert titles(login("grace")) == published | {"Secret draft"}


@pytest.mark.parametrize("order", [("ada", "anonymous", "bob"), ("anonymous", "bob", "ada")])
def test_lesson_content_is_only_served_to_those_who_may_read_it(
    client: Any, login: Any, world: dict[str, Any], order: tuple[str, ...]
) -> None:
    expected = {"ada": "free secret", "anonymous": None, "bob": None}
    url = f"{API}/lessons/?course={world['free']}"
    for _ in range(2):
        for name in order:
            headers = {} if name == "anonymous" else login(name)
            body = client.get(url, headers=headers).json()
            assert body["results"][0]["content"] == expected[name], name


def test_page_links_and_entries_do_not_depend_on_the_host_header(
    client: Any, world: dict[str, Any]
) -> None:
    from eduflow.cache.stores import get_redis

    url = f"{API}/courses/?page_size=1"
    a = client.get(url, headers={"Host": "a.example"})
    b = client.get(url, headers={"Host": "evil.example"})
    assert a.headers["x-cache"] == "miss" and b.headers["x-cache"] == "hit"
    assert a.json() == b.json()
    assert a.json()["next"].startswith("http://localhost:8000/api/v1/courses/?")  # the setting
    redis = get_redis()
    assert redis is not None
    keys = [k.decode() for k in redis.keys("eduflow:resp:courses:*")]
    assert len(keys) == 1 and "example" not in keys[0]


# --------------------------------------------------------------------------- stampede


def test_concurrent_misses_cause_one_database_rebuild(
    live_server: Any, world: dict[str, Any]
) -> None:
    from eduflow.cache.health import stats

    n = 12
    barrier = threading.Barrier(n)
    results: list[httpx.Response] = []
    lock = threading.Lock()

    def fetch() -> None:
        with httpx.Client(base_url=live_server.url, timeout=10) as c:
            barrier.wait()
            r = c.get(f"{API}/courses/?ordering=-price")
        with lock:
            results.append(r)

    before = stats.local()
    with counted_queries() as statements:
        threads = [threading.Thread(target=fetch) for _ in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    after = stats.local()
    assert [r.status_code for r in results] == [200] * n
    assert len({r.content for r in results}) == 1
    assert after.get("courses:rebuilds", 0) - before.get("courses:rebuilds", 0) == 1
    # list_courses is two queries (count + page): run once for the whole burst.
    assert len([s for s in statements if "FROM courses" in s]) == 2, statements


# --------------------------------------------------------------------------- signed-in hits


@pytest.mark.parametrize("change", ["logout", "role change", "deactivation", "bad token"])
def test_a_cached_read_never_admits_a_token_that_stopped_working_or_changed_role(
    client: Any, login: Any, world: dict[str, Any], change: str
) -> None:
    response = client.post(
        f"{API}/auth/login/", json={"username": "ada", "password": "correct-horse-42"}
    )
    tokens = response.json()
    ada = {"Authorization": f"Bearer {tokens['access']}"}
    urls = [
        f"{API}/courses/",
        f"{API}/courses/{world['free']}/",
        f"{API}/lessons/?course={world['free']}",
    ]
    for url in urls:
        client.get(url, headers=ada)
        assert client.get(url, headers=ada).headers["x-cache"] == "hit", url
    ada_id = client.get(f"{API}/auth/me/", headers=ada).json()["id"]
    root = login("root")
    if change == "logout":
        done = client.post(f"{API}/auth/logout/", json={"refresh": tokens["refresh"]}, headers=ada)
    elif change == "role change":
        done = client.patch(f"{API}/users/{ada_id}/", json={"role": "instructor"}, headers=root)
    elif change == "deactivation":
        done = client.patch(f"{API}/users/{ada_id}/", json={"is_active": False}, headers=root)
    else:
        done = client.get(f"{API}/courses/")
        ada = {"Authorization": "Bearer " + tokens["access"][:-2] + "xx"}
    assert done.status_code < 300, done.text
    # A role change keeps the token working, with the new role (SPEC section 1).
    expected = 200 if change == "role change" else 401
    for url in urls:
        assert client.get(url, headers=ada).status_code == expected, url
    if change == "role change":
        assert client.get(f"{API}/auth/me/", headers=ada).json()["role"] == "instructor"


def test_an_expired_token_is_refused_even_after_it_was_served_from_the_cache(
    client: Any, login: Any, world: dict[str, Any]
) -> None:
    import time

    from eduflow.security import decode_token, encode_token

    claims = decode_token(login("ada")["Authorization"].removeprefix("Bearer "), "access")
    short, _ = encode_token(int(claims["sub"]), "access", claims["sid"], 2, role="student")
    headers = {"Authorization": f"Bearer {short}"}
    url = f"{API}/courses/{world['free']}/"
    client.get(url, headers=headers)
    assert client.get(url, headers=headers).headers["x-cache"] == "hit"
    time.sleep(2.1)
    assert client.get(url, headers=headers).status_code == 401
