"""Drill: Redis stops answering without closing its connections (SIGSTOP for 15 s) while
students enroll and read.

Measured: after the first second of the outage, the p99 of enrollment writes stays under the
Redis timeout plus 100 ms (a frozen Redis costs its timeout once, as a closed port does);
nothing answered 201 is lost, nothing doubled, every course's seats add up.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.ops.drills import Load, database_consistent, open_course_ids, p, seed, student_tokens

pytestmark = pytest.mark.slow

FREEZE_S = 15.0
REDIS_TIMEOUT_S = 0.5  # the socket timeout of EduFlow's Redis client (eduflow.cache.stores)


def test_frozen_redis_costs_its_timeout_once(running_drill: dict[str, Any]) -> None:
    pg, redis, server, env = (running_drill[k] for k in ("pg", "redis", "server", "env"))
    seed(env, courses=12, students=40)
    tokens = student_tokens(server.url, 40)
    courses = open_course_ids(pg.url)
    with Load(server.url, tokens, courses, writers=3, readers=1) as load:
        time.sleep(2.0)
        redis.freeze()
        frozen = time.monotonic()
        try:
            time.sleep(FREEZE_S)
        finally:
            redis.thaw()
        thawed = time.monotonic()
        time.sleep(3.0)

    assert {a.status for a in load.answers} <= {200, 201, 409}, {a.status for a in load.answers}
    first_second = load.between(frozen, frozen + 1.0, kind="enroll")
    writes = [a.duration for a in load.between(frozen + 1.0, thawed, kind="enroll")]
    assert len(writes) >= 50, len(writes)
    p99 = p(writes, 0.99)
    assert p99 < REDIS_TIMEOUT_S + 0.1, (p99, sorted(writes)[-5:])
    figures = database_consistent(pg.url, load.created_ids())
    print(
        f"frozen Redis {FREEZE_S:.0f} s: {len(writes)} writes after its first second, p50 "
        f"{p(writes, 0.5) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, max {max(writes) * 1000:.0f} "
        f"ms; first second: {len(first_second)} writes, max "
        f"{max((a.duration for a in first_second), default=0) * 1000:.0f} ms; {figures}"
    )
