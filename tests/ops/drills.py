"""What the fault drills share: demo data, an enrollment load that records every answer, and
the checks of what the database holds afterwards (nothing lost, nothing doubled, seats)."""

from __future__ import annotations

import itertools
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg

from tests.ops.stack import run_eduflow

API = "/api/v1"
DEMO_PASSWORD = "eduflow-demo-pass"


@dataclass
class Answer:
    """One request of the load: when it was sent and answered, and what came back."""

    kind: str
    started: float
    ended: float
    status: int  # 0: no answer (a transport error)
    content_type: str = ""
    body: Any = None

    @property
    def duration(self) -> float:
        return self.ended - self.started


def seed(env: dict[str, str], *, courses: int, students: int) -> None:
    """Demo accounts and published courses, no enrollments (one transaction, by the CLI)."""
    run_eduflow(env, "demo", "seed", "--courses", str(courses), "--students", str(students),
                "--enrollments", "0", "--lessons-per-course", "1", "--json")  # fmt: skip


def student_tokens(base_url: str, count: int) -> list[str]:
    """Bearer tokens of demo students 1..count."""
    tokens = []
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for n in range(1, count + 1):
            response = client.post(
                f"{API}/auth/login/",
                json={"username": f"demo_student_{n:05d}", "password": DEMO_PASSWORD},
            )
            assert response.status_code == 200, response.text
            tokens.append(response.json()["access"])
    return tokens


def open_course_ids(pg_url: str, min_capacity: int = 1) -> list[int]:
    """Published courses with room for ``min_capacity``, those with the most seats first."""
    with psycopg.connect(pg_url, connect_timeout=5) as conn:
        rows = conn.execute(
            "SELECT id FROM courses WHERE is_published AND coalesce(capacity, %s) >= %s "
            "ORDER BY capacity DESC NULLS FIRST, id",
            (min_capacity, min_capacity),
        ).fetchall()
    return [int(r[0]) for r in rows]


class Load:
    """Threads enrolling (student, course) pairs back to back, plus readers of the enrollment
    list; every answer is recorded with its timing."""

    def __init__(
        self,
        base_url: str,
        tokens: list[str],
        course_ids: list[int],
        *,
        writers: int = 3,
        readers: int = 1,
        pause: float = 0.02,
    ) -> None:
        self.base_url = base_url
        self.tokens = tokens
        self.pause = pause
        self.answers: list[Answer] = []
        self._pairs: Iterator[tuple[str, int]] = iter([(t, c) for c in course_ids for t in tokens])
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(self._enroll,), daemon=True)
            for _ in range(writers)
        ] + [
            threading.Thread(target=self._run, args=(self._list,), daemon=True)
            for _ in range(readers)
        ]
        self._reader_tokens = itertools.cycle(tokens)

    def _enroll(self, client: httpx.Client) -> tuple[str, httpx.Response] | None:
        with self._lock:
            pair = next(self._pairs, None)
        if pair is None:
            return None
        token, course = pair
        headers = {"Authorization": f"Bearer {token}"}
        return "enroll", client.post(f"{API}/enrollments/", json={"course": course},
                                     headers=headers)  # fmt: skip

    def _list(self, client: httpx.Client) -> tuple[str, httpx.Response] | None:
        with self._lock:
            token = next(self._reader_tokens)
        headers = {"Authorization": f"Bearer {token}"}
        return "list", client.get(f"{API}/enrollments/", headers=headers)

    def _run(self, step: Callable[[httpx.Client], tuple[str, httpx.Response] | None]) -> None:
        with httpx.Client(base_url=self.base_url, timeout=60) as client:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    done = step(client)
                except httpx.HTTPError:
                    self._record(Answer("error", started, time.monotonic(), 0))
                    continue
                if done is None:
                    return
                kind, response = done
                try:
                    body = response.json()
                except ValueError:
                    body = response.text
                ctype = response.headers.get("content-type", "")
                self._record(
                    Answer(kind, started, time.monotonic(), response.status_code, ctype, body)
                )
                time.sleep(self.pause)

    def _record(self, answer: Answer) -> None:
        with self._lock:
            self.answers.append(answer)

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def between(self, start: float, end: float, kind: str | None = None) -> list[Answer]:
        """Answers to requests sent at or after ``start`` (and before ``end``)."""
        with self._lock:
            return [
                a
                for a in self.answers
                if start <= a.started < end and (kind is None or a.kind == kind)
            ]

    def created_ids(self) -> set[int]:
        """Ids of the enrollments the API answered 201 for."""
        with self._lock:
            return {int(a.body["id"]) for a in self.answers if a.status == 201}


class Poller:
    """One thread asking ``path`` every ``every`` seconds, recording each answer."""

    def __init__(self, base_url: str, path: str = "/readyz", every: float = 0.25) -> None:
        self.answers: list[Answer] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(base_url, path, every),
                                        daemon=True)  # fmt: skip

    def _run(self, base_url: str, path: str, every: float) -> None:
        with httpx.Client(base_url=base_url, timeout=30) as client:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    status = client.get(path).status_code
                except httpx.HTTPError:
                    status = 0
                self.answers.append(Answer(path, started, time.monotonic(), status))
                self._stop.wait(every)

    def __enter__(self) -> Poller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def assert_problem_503(answer: Answer) -> None:
    """A 503 answered as a problem document, with nothing of the internals in it."""
    assert answer.status == 503, answer
    assert answer.content_type.startswith("application/problem+json"), answer
    assert answer.body["status"] == 503
    assert "Traceback" not in str(answer.body) and "psycopg" not in str(answer.body)


def database_consistent(pg_url: str, created: set[int]) -> dict[str, int]:
    """Every answered enrollment is there, no (student, course) twice, every course's
    ``seats_taken`` equals its active + pending enrollments and stays within capacity."""
    with psycopg.connect(pg_url, connect_timeout=5) as conn:
        ids = {int(r[0]) for r in conn.execute("SELECT id FROM enrollments").fetchall()}
        doubled = conn.execute(
            "SELECT count(*) FROM (SELECT 1 FROM enrollments GROUP BY student_id, course_id "
            "HAVING count(*) > 1) d"
        ).fetchone()
        wrong_seats = conn.execute(
            "SELECT count(*) FROM (SELECT c.id FROM courses c LEFT JOIN enrollments e "
            "ON e.course_id = c.id AND e.status IN ('active', 'pending') "
            "GROUP BY c.id, c.seats_taken, c.capacity "
            "HAVING c.seats_taken <> count(e.id) OR c.seats_taken > coalesce(c.capacity, "
            "c.seats_taken)) w"
        ).fetchone()
    assert created <= ids, f"answered 201 but missing: {sorted(created - ids)[:10]}"
    assert doubled is not None and doubled[0] == 0, "an enrollment exists twice"
    assert wrong_seats is not None and wrong_seats[0] == 0, "seats_taken out of step"
    return {"enrollments": len(ids), "answered_201": len(created)}


def p(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[max(0, int(q * 100) - 1)]
