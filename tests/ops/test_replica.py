"""The read replica, against a real streaming replica: public catalogue reads are served by
it, a lagging replica never shows writers stale data after their own writes nor fills the
cache with it, and a replica that is down only sends reads to the primary.

The test starts its own primary (``LocalPostgres``) and a hot standby made from it with
``pg_basebackup -R`` (``tests/ops/replica.py`` says why not the shared server), both
logging every statement with the client's ``application_name``; the application runs in
process with ``EDUFLOW_DATABASE_URL`` on the primary and ``EDUFLOW_READ_DATABASE_URL`` on
the replica. Replication lag is made on demand with ``pg_wal_replay_pause()``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text

from eduflow.models.users import Role
from tests.conftest import _table_names, reset_process_state
from tests.factories import DEFAULT_PASSWORD, make_course, make_lesson, make_user
from tests.ops.replica import LOG_STATEMENTS, LocalReplica, statements_on
from tests.ops.stack import LocalPostgres, run_eduflow

pytestmark = pytest.mark.slow

API = "/api/v1"
PRIMARY_APP = "eduflow-primary"
REPLICA_APP = "eduflow-replica"
# In the statement that reads course rows (list pages and detail).
COURSE_ROWS = "FROM courses JOIN users"
LESSON_ROWS = "FROM lessons JOIN courses"
# Longer than the cache keeps (``MAX_VARIANT_CHARS``): built for the caller, never stored.
UNCACHEABLE = "&pad=" + "x" * 1100


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[LocalPostgres, LocalReplica]]:
    """A primary (migrated) and a streaming replica of it; both stopped and deleted after."""
    primary: LocalPostgres | None = None
    replica: LocalReplica | None = None
    try:
        started = time.monotonic()
        primary = LocalPostgres()
        primary.options = LOG_STATEMENTS
        primary.start()
        env = {**os.environ, "EDUFLOW_DATABASE_URL": primary.url}
        env.pop("EDUFLOW_READ_DATABASE_URL", None)
        run_eduflow(env, "db", "upgrade")
        replica = LocalReplica(primary)
        replica.options = LOG_STATEMENTS
        replica.start()
        replica.wait_streaming()
        print(f"primary + streaming replica ready in {time.monotonic() - started:.1f} s")
        yield primary, replica
    finally:
        if replica is not None:
            replica.destroy()
        if primary is not None:
            primary.destroy()


@pytest.fixture
def api(
    pair: tuple[LocalPostgres, LocalReplica],
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> Iterator[Any]:
    """The application in process on the pair (empty tables), with an HTTP client; more
    settings may come as the fixture's parameter."""
    from fastapi.testclient import TestClient

    primary, replica = pair
    for name, value in getattr(request, "param", {}).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("EDUFLOW_DATABASE_URL", f"{primary.url}?application_name={PRIMARY_APP}")
    monkeypatch.setenv(
        "EDUFLOW_READ_DATABASE_URL",
        f"postgresql://postgres@127.0.0.1:{replica.port}/postgres?application_name={REPLICA_APP}",
    )
    monkeypatch.setenv("EDUFLOW_DB_CONNECT_TIMEOUT", "2")
    reset_process_state()
    from eduflow.api.app import create_app
    from eduflow.db import get_engine

    with get_engine().begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(_table_names())} RESTART IDENTITY CASCADE"))
    try:
        with TestClient(create_app(), base_url="http://testserver") as client:
            yield client
    finally:
        if replica.is_running():
            replica.thaw()
            replica.resume_replay()
        monkeypatch.undo()
        reset_process_state()


def login(client: Any, username: str) -> dict[str, str]:
    response = client.post(
        f"{API}/auth/login/", json={"username": username, "password": DEFAULT_PASSWORD}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access']}"}


def catalogue(title: str = "Old title") -> dict[str, int]:
    """An instructor ``grace`` with one published course (and a lesson), on the primary."""
    from eduflow.db import session_scope

    with session_scope() as session:
        owner = make_user(session, Role.instructor, username="grace")
        course = make_course(session, owner, title=title)
        make_lesson(session, course, title="Lesson one", content="Lesson one's text")
        assert course.id is not None and owner.id is not None
        return {"course": course.id, "owner": owner.id}


def reads(outcome: str) -> float:
    from eduflow.metrics import REPLICA_READS

    return REPLICA_READS.labels(outcome)._value.get()  # type: ignore[no-any-return]


def titles(response: Any) -> list[str]:
    assert response.status_code == 200, response.text[:300]
    return [c["title"] for c in response.json()["results"]]


def test_public_catalogue_reads_are_served_by_the_replica(
    api: Any, pair: tuple[LocalPostgres, LocalReplica]
) -> None:
    primary, replica = pair
    ids = catalogue()
    replica.wait_replayed()
    on_replica = replica.statements(REPLICA_APP, COURSE_ROWS)
    on_primary = statements_on(primary, PRIMARY_APP, COURSE_ROWS)
    lessons_on_replica = replica.statements(REPLICA_APP, LESSON_ROWS)
    served = reads("replica")

    assert titles(api.get(f"{API}/courses/")) == ["Old title"]  # a miss: filled
    detail = api.get(f"{API}/courses/{ids['course']}/")
    assert detail.status_code == 200 and detail.json()["title"] == "Old title"
    lessons = api.get(f"{API}/lessons/?course={ids['course']}")
    assert lessons.status_code == 200 and lessons.json()["count"] == 1
    assert api.get(f"{API}/courses/").headers["x-cache"] == "hit"  # and then cached

    assert reads("replica") == served + 3
    assert replica.statements(REPLICA_APP, COURSE_ROWS) == on_replica + 2  # list + detail
    assert replica.statements(REPLICA_APP, LESSON_ROWS) == lessons_on_replica + 2  # count + page
    assert statements_on(primary, PRIMARY_APP, COURSE_ROWS) == on_primary  # none here
    assert statements_on(primary, PRIMARY_APP, LESSON_ROWS) == 0
    # Logins and every write still go to the primary.
    grace = login(api, "grace")
    changed = api.patch(f"{API}/courses/{ids['course']}/", json={"price": "5"}, headers=grace)
    assert changed.status_code == 200, changed.text
    assert statements_on(primary, PRIMARY_APP, "UPDATE courses") >= 1
    assert replica.statements(REPLICA_APP, "UPDATE courses") == 0


def test_a_lagging_replica_never_shows_a_writer_stale_data_nor_fills_the_cache_with_it(
    api: Any, pair: tuple[LocalPostgres, LocalReplica]
) -> None:
    from eduflow.cache.stores import get_redis

    _, replica = pair
    ids = catalogue("Old title")
    course = f"{API}/courses/{ids['course']}/"
    grace = login(api, "grace")
    replica.wait_replayed()
    assert api.get(course).json()["title"] == "Old title"  # cached, from the replica

    replica.pause_replay()
    changed = api.patch(course, json={"title": "New title"}, headers=grace)
    assert changed.status_code == 200, changed.text
    assert replica.query(f"SELECT title FROM courses WHERE id = {ids['course']}") == "Old title"
    behind = reads("behind")

    # The writer sees its write at once: the invalidation named the primary's position,
    # the replica has not replayed it, so the entry is filled from the primary.
    mine = api.get(course, headers=grace)
    assert mine.status_code == 200 and mine.json()["title"] == "New title"
    assert mine.headers["x-cache"] == "miss"
    assert reads("behind") == behind + 1
    # ... and what it filled is what everyone gets: never the replica's stale row.
    anyone = api.get(course)
    assert anyone.headers["x-cache"] == "hit" and anyone.json()["title"] == "New title"
    redis = get_redis()
    assert redis is not None
    stored = redis.get(f"eduflow:resp:course:{ids['course']}")
    assert stored is not None and b"New title" in stored and b"Old title" not in stored
    assert titles(api.get(f"{API}/courses/")) == ["New title"]  # a list fill: the primary too
    assert titles(api.get(f"{API}/courses/", headers=grace)) == ["New title"]

    # Past the cache (an uncacheable URL) the writer still sees its write (its own
    # latest position is kept for it); an anonymous reader may see the replica's old data.
    assert titles(api.get(f"{API}/courses/?ordering=title{UNCACHEABLE}", headers=grace)) == [
        "New title"
    ]
    assert titles(api.get(f"{API}/courses/?ordering=title{UNCACHEABLE}")) == ["Old title"]

    replica.resume_replay()
    replica.wait_replayed()
    assert titles(api.get(f"{API}/courses/?ordering=title{UNCACHEABLE}")) == ["New title"]


def test_a_student_reads_what_their_enrollment_opened_despite_a_lagging_replica(
    api: Any, pair: tuple[LocalPostgres, LocalReplica]
) -> None:
    from eduflow.db import session_scope

    _, replica = pair
    ids = catalogue()
    with session_scope() as session:
        make_user(session, Role.student, username="ada")
    ada = login(api, "ada")
    lessons = f"{API}/lessons/?course={ids['course']}"
    replica.wait_replayed()
    assert api.get(lessons, headers=ada).json()["results"][0]["content"] is None  # cached

    replica.pause_replay()
    enrolled = api.post(f"{API}/enrollments/", json={"course": ids["course"]}, headers=ada)
    assert enrolled.status_code == 201, enrolled.text
    behind = reads("behind")
    mine = api.get(lessons, headers=ada)
    assert mine.json()["results"][0]["content"] == "Lesson one's text"
    course = api.get(f"{API}/courses/{ids['course']}/")
    assert course.json()["seats_taken"] == 1  # the seat it took, not the replica's 0
    assert reads("behind") == behind + 2
    assert replica.query(f"SELECT seats_taken FROM courses WHERE id = {ids['course']}") == 0


def test_a_replica_that_is_down_sends_reads_to_the_primary(
    api: Any,
    pair: tuple[LocalPostgres, LocalReplica],
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    from eduflow import db_routing

    _, replica = pair
    monkeypatch.setattr(db_routing, "RETRY_AFTER", 2.0)
    ids = catalogue("Still here")
    replica.wait_replayed()
    assert titles(api.get(f"{API}/courses/?page_size=5")) == ["Still here"]
    replica.stop("immediate")
    try:
        down = reads("down")
        started = time.monotonic()
        for size in (6, 7, 8):  # misses: each is built from the database
            assert titles(api.get(f"{API}/courses/?page_size={size}")) == ["Still here"]
        detail = api.get(f"{API}/courses/{ids['course']}/")
        assert detail.status_code == 200 and detail.json()["title"] == "Still here"
        assert time.monotonic() - started < 3.0
        # One failed attempt; the replica is then left alone for RETRY_AFTER seconds.
        assert reads("down") == down + 1
    finally:
        replica.start()
    replica.wait_streaming()
    time.sleep(max(0.0, started + 2.1 - time.monotonic()))  # RETRY_AFTER: tried again, serves
    served = reads("replica")
    assert titles(api.get(f"{API}/courses/?page_size=9")) == ["Still here"]
    assert reads("replica") == served + 1
    logged = capfd.readouterr()
    lines = (logged.out + logged.err).splitlines()
    assert sum('"replica_unavailable"' in line for line in lines) == 1  # once per outage
    assert sum('"replica_recovered"' in line for line in lines) == 1


@pytest.mark.parametrize("api", [{"EDUFLOW_DB_REQUEST_DEADLINE": "4"}], indirect=True)
def test_a_replica_that_does_not_answer_costs_a_public_read_half_its_deadline(
    api: Any, pair: tuple[LocalPostgres, LocalReplica]
) -> None:
    _, replica = pair
    catalogue("Still here")
    replica.wait_replayed()
    assert titles(api.get(f"{API}/courses/?page_size=5")) == ["Still here"]  # a pooled one
    replica.freeze()  # connections stay open, nothing answers
    try:
        started = time.monotonic()
        assert titles(api.get(f"{API}/courses/?page_size=6")) == ["Still here"]
        waited = time.monotonic() - started
        assert 1.5 < waited < 3.5, waited  # half of the 4 s deadline, then the primary
        started = time.monotonic()
        assert titles(api.get(f"{API}/courses/?page_size=7")) == ["Still here"]
        assert time.monotonic() - started < 1.0  # the replica is left alone meanwhile
    finally:
        replica.thaw()
    replica.wait_streaming()
