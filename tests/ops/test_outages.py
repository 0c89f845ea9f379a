"""Outage drills: PostgreSQL or Redis goes away under load, then comes back.

``eduflow serve --workers 2`` runs as a real child process on a PostgreSQL cluster and a
Redis server that the test started itself, and stops and restarts them mid-test.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest

pytestmark = pytest.mark.slow

API = "/api/v1"
STATEMENT_TIMEOUT_S = 2.0  # EDUFLOW_DB_STATEMENT_TIMEOUT_MS in drill_env
PASSWORD = "drill-password-42"
RECOVERY_BUDGET_S = 5.0
_names = itertools.count()


@dataclass
class Result:
    started: float
    ended: float
    status: int
    content_type: str
    body: Any

    @property
    def duration(self) -> float:
        return self.ended - self.started


def register(client: httpx.Client) -> httpx.Response:
    """Register a new student: a request that must write to PostgreSQL."""
    name = f"drill{next(_names)}_{uuid.uuid4().hex[:8]}"
    return client.post(
        f"{API}/auth/register/",
        json={"username": name, "email": f"{name}@example.com", "password": PASSWORD},
    )


class Load:
    """Threads sending writes back to back, recording every answer and how long it took."""

    def __init__(self, base_url: str, threads: int = 4) -> None:
        self.base_url = base_url
        self.results: list[Result] = []
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=30) as client:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    response = register(client)
                except httpx.HTTPError as exc:  # a hang or a dropped connection is a failure
                    with self._lock:
                        self.errors.append(exc)
                    continue
                ended = time.monotonic()
                try:
                    body = response.json()
                except ValueError:
                    body = response.text
                with self._lock:
                    self.results.append(
                        Result(
                            started,
                            ended,
                            response.status_code,
                            response.headers.get("content-type", ""),
                            body,
                        )
                    )
                time.sleep(0.02)

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def between(self, start: float, end: float) -> list[Result]:
        """Requests sent at or after ``start`` and answered by ``end``."""
        with self._lock:
            return [r for r in self.results if r.started >= start and r.ended <= end]


def wait_until(predicate: Any, budget: float) -> float:
    """Seconds until ``predicate()`` held (polling every 100 ms); fails after ``budget``."""
    start = time.monotonic()
    while True:
        try:
            if predicate():
                return time.monotonic() - start
        except httpx.HTTPError:
            pass
        if time.monotonic() - start > budget:
            raise AssertionError(f"not recovered within {budget} s")
        time.sleep(0.1)


def assert_problem_503(result: Result) -> None:
    assert result.status == 503, result
    assert result.content_type.startswith("application/problem+json"), result
    assert result.body["status"] == 503
    assert result.body["type"].endswith("/service-unavailable")
    assert "Traceback" not in str(result.body) and "psycopg" not in str(result.body)


# fast: a clean stop (open transactions rolled back); immediate: a crash (no shutdown
# checkpoint, crash recovery when it starts again).
@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_postgresql_outage_fails_fast_with_503_and_recovers_by_itself(
    running_drill: dict[str, Any], mode: str
) -> None:
    pg, server = running_drill["pg"], running_drill["server"]
    client = httpx.Client(base_url=server.url, timeout=30)
    workers_before = server.children()
    assert register(client).status_code == 201
    assert client.get("/readyz").status_code == 200

    with Load(server.url) as load:
        time.sleep(1.0)
        pg.stop(mode)  # under load: open transactions are cut off
        stopped = time.monotonic()
        time.sleep(3.0)

        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert "database" in ready.text.lower()
        assert register(client).status_code == 503
        # Liveness stays green: an orchestrator must not restart processes that will recover.
        assert client.get("/healthz").status_code == 200

        restarting = time.monotonic()
        pg.start()  # returns once PostgreSQL accepts connections
        back = time.monotonic()
        recovery = wait_until(lambda: register(client).status_code == 201, RECOVERY_BUDGET_S)
        wait_until(lambda: client.get("/readyz").status_code == 200, RECOVERY_BUDGET_S - recovery)
        time.sleep(1.0)

    assert not load.errors, load.errors[:3]
    statuses = {r.status for r in load.results}
    assert statuses <= {201, 503}, statuses  # never a 500, never a hang
    # While PostgreSQL was down: every write failed fast with a 503 problem document.
    during = load.between(stopped, restarting)
    assert len(during) >= 8, len(during)
    for result in during:
        assert_problem_503(result)
        assert result.duration < STATEMENT_TIMEOUT_S, result
    # No request, even one caught mid-transaction, waited beyond the statement timeout.
    assert max(r.duration for r in load.results) < STATEMENT_TIMEOUT_S + 1.0
    # After it came back: writes succeed again, in the same processes.
    after = load.between(back + recovery, time.monotonic())
    assert after and {r.status for r in after} == {201}
    assert server.alive()
    assert server.children() == workers_before, "API worker processes were restarted"
    # Nothing lost, nothing doubled: every registration answered 201 is there, once.
    created = [r.body["username"] for r in load.results if r.status == 201]
    with psycopg.connect(pg.url, connect_timeout=5) as conn:
        rows = conn.execute(
            "SELECT username FROM users WHERE username = ANY(%s)", (created,)
        ).fetchall()
    assert sorted(r[0] for r in rows) == sorted(created)
    print(f"PostgreSQL drill ({mode} stop): {len(during)} requests during the outage, all 503, "
          f"max {max(r.duration for r in during) * 1000:.0f} ms; recovered "
          f"{recovery:.2f} s after PostgreSQL accepted connections")  # fmt: skip


def test_redis_outage_keeps_serving_from_postgresql_and_recovers(
    running_drill: dict[str, Any],
) -> None:
    redis, server = running_drill["redis"], running_drill["server"]
    client = httpx.Client(base_url=server.url, timeout=30)
    workers_before = server.children()
    assert client.get("/readyz").status_code == 200

    redis.stop()
    try:
        started = time.monotonic()
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert "redis" in ready.text.lower()
        assert time.monotonic() - started < 2.0
        # The database still answers: registration and login keep working.
        created = register(client)
        assert created.status_code == 201, created.text
        login = client.post(
            f"{API}/auth/login/",
            json={"username": created.json()["username"], "password": PASSWORD},
        )
        assert login.status_code == 200, login.text
        token = {"Authorization": f"Bearer {login.json()['access']}"}
        assert client.get(f"{API}/auth/me/", headers=token).status_code == 200
        assert client.get(f"{API}/courses/").status_code == 200
    finally:
        redis.start()
    back = time.monotonic()
    wait_until(lambda: client.get("/readyz").status_code == 200, RECOVERY_BUDGET_S)
    assert time.monotonic() - back < RECOVERY_BUDGET_S
    assert register(client).status_code == 201
    assert server.children() == workers_before
