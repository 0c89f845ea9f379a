"""The waitlist under really concurrent HTTP requests against a live server on PostgreSQL:
a rush that fills the course and the line, concurrent unenrolls, then accepts, declines and
expiries interleaved — the invariants checked after every step, each offer email once."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from eduflow.models import Course, Enrollment, OutboxJob, WaitlistEntry
from eduflow.models._base import utcnow
from eduflow.models.users import Role
from eduflow.services.auth import issue_tokens
from tests.factories import make_course, make_user

pytestmark = pytest.mark.slow


async def _send(
    base: str, calls: list[tuple[str, str, str, dict[str, Any] | None]]
) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
        return await asyncio.gather(
            *(
                client.request(method, path, headers={"Authorization": f"Bearer {tok}"}, json=body)
                for method, path, tok, body in calls
            )
        )


def check_invariants(session: Any, course_id: int) -> dict[str, Any]:
    """``active + pending + open offers <= capacity``; the counters equal the rows; positions
    of waiting entries are 1..n in join order; one open entry per student."""
    session.expire_all()
    course = session.get(Course, course_id)
    holding = session.execute(
        select(func.count())
        .select_from(Enrollment)
        .where(Enrollment.course_id == course_id, Enrollment.status.in_(("active", "pending")))
    ).scalar()
    entries = session.execute(
        select(WaitlistEntry).where(WaitlistEntry.course_id == course_id).order_by(WaitlistEntry.id)
    ).scalars()
    by_status: dict[str, list[WaitlistEntry]] = {}
    for entry in entries:
        by_status.setdefault(entry.status, []).append(entry)
    offered = len(by_status.get("offered", []))
    waiting = len(by_status.get("waiting", []))
    assert course.seats_taken == holding
    assert course.offers_open == offered
    assert course.waitlist_count == waiting
    assert holding + offered <= course.capacity, (holding, offered, course.capacity)
    # Nobody skipped: while a seat is free nobody waits; every offer went to an earlier
    # joiner than every entry still waiting.
    if waiting:
        assert holding + offered == course.capacity
        first_waiting = by_status["waiting"][0].id
        assert all(e.id < first_waiting for e in by_status.get("offered", []))
    open_students = [e.student_id for s in ("waiting", "offered") for e in by_status.get(s, [])]
    assert len(open_students) == len(set(open_students))
    return {"holding": holding, "offered": offered, "waiting": waiting, "by_status": by_status}


def test_rush_line_offers_and_interleaved_answers_keep_every_invariant(
    session: Any, live_server: Any, smtp_server: Any
) -> None:
    from tests.jobs.conftest import work_burst

    course = make_course(session, capacity=50)
    students = [make_user(session, Role.student) for _ in range(300)]
    tokens = [issue_tokens(session, s).access for s in students]
    session.commit()
    base = live_server.url

    # 300 concurrent students try to enroll, and those turned away join the line at once.
    enrolled = asyncio.run(
        _send(base, [("POST", "/api/v1/enrollments/", t, {"course": course.id}) for t in tokens])
    )
    assert Counter(r.status_code for r in enrolled) == {201: 50, 409: 250}
    refused = [t for t, r in zip(tokens, enrolled, strict=True) if r.status_code == 409]
    joined = asyncio.run(
        _send(base, [("POST", "/api/v1/waitlist/", t, {"course": course.id}) for t in refused])
    )
    assert Counter(r.status_code for r in joined) == {201: 250}
    state = check_invariants(session, course.id)
    assert (state["holding"], state["waiting"]) == (50, 250)
    listed = asyncio.run(_send(base, [("GET", "/api/v1/waitlist/", t, None) for t in refused]))
    positions = sorted(r.json()["results"][0]["position"] for r in listed)
    assert positions == list(range(1, 251))  # no gaps, no repeats
    join_order = [e.id for e in state["by_status"]["waiting"]]

    # 30 concurrent unenrolls: exactly 30 offers, to the first 30 in line.
    holders = [
        (t, r.json()["id"]) for t, r in zip(tokens, enrolled, strict=True) if r.status_code == 201
    ]
    leaving = holders[:30]
    freed = asyncio.run(
        _send(base, [("DELETE", f"/api/v1/enrollments/{eid}/", t, None) for t, eid in leaving])
    )
    assert Counter(r.status_code for r in freed) == {204: 30}
    state = check_invariants(session, course.id)
    assert [e.id for e in state["by_status"]["offered"]] == join_order[:30]

    # Accepts, declines and expiries interleaved, concurrently, over a few rounds.
    token_of = {}
    for t, r in zip(refused, joined, strict=True):
        token_of[r.json()["id"]] = t
    rng = random.Random(7)
    for _round in range(4):
        offered = [e.id for e in state["by_status"].get("offered", [])]
        rng.shuffle(offered)
        third = len(offered) // 3
        accept, decline, expire = offered[:third], offered[third : 2 * third], offered[2 * third :]
        session.execute(
            update(WaitlistEntry)
            .where(WaitlistEntry.id.in_(expire))
            .values(offer_expires_at=utcnow() - timedelta(seconds=1))
        )
        session.commit()
        calls = [("POST", f"/api/v1/waitlist/{i}/accept/", token_of[i], None) for i in accept]
        calls += [("POST", f"/api/v1/waitlist/{i}/decline/", token_of[i], None) for i in decline]
        # Half of the expired ones try to accept too late, the expiry job takes the rest.
        calls += [("POST", f"/api/v1/waitlist/{i}/accept/", token_of[i], None) for i in expire[::2]]
        answers = asyncio.run(_send(base, calls))
        want = [201] * len(accept) + [204] * len(decline) + [409] * len(expire[::2])
        assert [r.status_code for r in answers] == want, [
            r.text for r in answers if r.status_code >= 400
        ][:3]
        from eduflow.jobs.waitlist_tasks import expire_waitlist_offers

        expire_waitlist_offers()
        state = check_invariants(session, course.id)
        assert state["holding"] + state["offered"] == 50
        offered_now = {e.id for e in state["by_status"].get("offered", [])}
        closed = {
            e.id for s in ("accepted", "declined", "expired") for e in state["by_status"].get(s, [])
        }
        assert not offered_now & closed
    # Nobody skipped: the entries ever offered are exactly the first ones in join order.
    touched = [
        e.id
        for s in ("offered", "accepted", "declined", "expired")
        for e in state["by_status"].get(s, [])
    ]
    assert sorted(touched) == join_order[: len(touched)]
    session.expire_all()
    offer_jobs = Counter(
        job.args["entry_id"]
        for job in session.execute(
            select(OutboxJob).where(OutboxJob.job_name == "send_waitlist_offer")
        ).scalars()
    )
    assert sorted(offer_jobs) == sorted(touched)  # nobody offered twice
    assert set(offer_jobs.values()) == {1}

    # Each offer email exactly once, one per offer ever made.
    work_burst()
    work_burst()
    offers = [m for m in smtp_server.messages if "is yours" in m["Subject"]]
    assert len(offers) == len(touched)
    assert len({m["To"] for m in offers}) == len(offers)
