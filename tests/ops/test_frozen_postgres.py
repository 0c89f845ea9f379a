"""Drill: PostgreSQL stops answering without closing its connections (every process of the
cluster SIGSTOPped for 20 s) while students enroll and read; then it runs again.

Measured: every request is answered by the deadline (201/409 or a 503 problem), ``/readyz``
says 503 within a second, and afterwards nothing answered 201 is missing, nothing exists
twice and every course's seats add up.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.ops.conftest import DB_DEADLINE_S
from tests.ops.drills import (
    Load,
    Poller,
    assert_problem_503,
    database_consistent,
    open_course_ids,
    p,
    seed,
    student_tokens,
)

pytestmark = pytest.mark.slow

FREEZE_S = 20.0
# A request may start its last wait just before the deadline; the 503 is then written out.
ANSWER_MARGIN_S = 0.5


def test_frozen_postgresql_gives_503s_by_the_deadline_and_recovers(
    running_drill: dict[str, Any],
) -> None:
    pg, server, env = running_drill["pg"], running_drill["server"], running_drill["env"]
    seed(env, courses=12, students=40)
    tokens = student_tokens(server.url, 40)
    courses = open_course_ids(pg.url)
    client = httpx.Client(base_url=server.url, timeout=60)

    with Poller(server.url) as ready, Load(server.url, tokens, courses) as load:
        time.sleep(2.0)
        pg.freeze()
        frozen = time.monotonic()
        try:
            time.sleep(FREEZE_S)
        finally:
            pg.thaw()
        thawed = time.monotonic()
        deadline = thawed + 15
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, "not ready again 15 s after the thaw"
            time.sleep(0.1)
        ready_again = time.monotonic() - thawed
        time.sleep(2.0)

    answers = load.answers
    assert not [a for a in answers if a.status == 0], "a request got no answer"
    assert {a.status for a in answers} <= {200, 201, 409, 503}, {a.status for a in answers}
    during = load.between(frozen, thawed)
    assert len(during) >= 20, len(during)
    slowest = max(a.duration for a in during)
    assert slowest <= DB_DEADLINE_S + ANSWER_MARGIN_S, slowest
    for answer in during:
        if answer.status == 503:
            assert_problem_503(answer)
    # Requests sent and answered while the server was frozen cannot have succeeded.
    late = [a for a in load.between(frozen, thawed) if a.ended < thawed]
    assert late and {a.status for a in late} == {503}, {a.status for a in late}
    # /readyz: 503 within a second during the freeze (after its first second).
    probes = [a for a in ready.answers if frozen + 1.0 <= a.started < thawed - 1.0]
    assert probes and {a.status for a in probes} == {503}, [a.status for a in probes]
    assert max(a.duration for a in probes) < 1.0, max(a.duration for a in probes)
    # Recovery: enrollments succeed again after the thaw, in the same processes.
    after = load.between(thawed + ready_again, time.monotonic(), kind="enroll")
    assert after and {a.status for a in after} <= {201, 409}
    assert 201 in {a.status for a in after}
    figures = database_consistent(pg.url, load.created_ids())
    durations = [a.duration for a in during]
    print(
        f"frozen PostgreSQL {FREEZE_S:.0f} s: {len(during)} requests during it "
        f"({sum(a.status == 503 for a in during)} x 503), p50 {p(durations, 0.5) * 1000:.0f} ms, "
        f"max {slowest * 1000:.0f} ms (deadline {DB_DEADLINE_S:.0f} s); /readyz max "
        f"{max(a.duration for a in probes) * 1000:.0f} ms over {len(probes)} probes; ready "
        f"{ready_again:.2f} s after the thaw; {figures}"
    )


def test_a_wait_that_runs_out_closes_its_connection_and_the_pool_drops_it(
    running_drill: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import text

    from eduflow.config import reset_settings
    from eduflow.db import dispose_engines, session_scope
    from eduflow.deadline import within
    from eduflow.errors import Unavailable

    pg = running_drill["pg"]
    monkeypatch.setenv("EDUFLOW_DATABASE_URL", pg.url)
    monkeypatch.setenv("EDUFLOW_DB_STATEMENT_TIMEOUT_MS", "1000")
    reset_settings()
    dispose_engines()
    backend = "SELECT pg_backend_pid()"
    try:
        with session_scope() as session:
            first = session.execute(text(backend)).scalar_one()
        pg.freeze()
        try:
            # Inside a request: the deadline bounds the wait.
            started = time.monotonic()
            with pytest.raises(Unavailable), within(0.5), session_scope() as session:
                session.execute(text("SELECT 1"))
            in_request = time.monotonic() - started
            # Outside requests (jobs, CLI): statement timeout + 1 s bounds it.
            started = time.monotonic()
            with pytest.raises(Unavailable), session_scope() as session:
                session.execute(text("SELECT 1"))
            outside = time.monotonic() - started
        finally:
            pg.thaw()
        assert 0.5 <= in_request < 1.0, in_request
        assert outside < 2.0 + 2.5, outside  # connect (2 s at most) + the 2 s bound
        with session_scope() as session:  # a fresh connection: the timed-out one was dropped
            assert session.execute(text(backend)).scalar_one() != first
    finally:
        monkeypatch.undo()
        reset_settings()
        dispose_engines()
