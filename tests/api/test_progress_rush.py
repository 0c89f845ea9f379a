"""Progress under concurrency: really concurrent HTTP requests against a live server on
PostgreSQL, then the jobs they caused, worked by a real worker against a real SMTP server."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from eduflow.models import Enrollment, LessonProgress, OutboxJob, ProgressEvent
from eduflow.services.auth import issue_tokens
from tests.factories import make_course, make_enrollment, make_lesson, make_user
from tests.jobs.conftest import work_burst

pytestmark = pytest.mark.slow


async def _fire(base: str, requests: list[tuple[str, int, list[dict[str, Any]]]]) -> list[Any]:
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
        return await asyncio.gather(
            *(
                client.post(
                    f"/api/v1/enrollments/{enrollment}/progress/",
                    headers={"Authorization": f"Bearer {token}"},
                    json={"events": events},
                )
                for token, enrollment, events in requests
            )
        )


def _event(lesson: int, kind: str = "completed") -> dict[str, Any]:
    return {"event_id": str(uuid.uuid4()), "lesson": lesson, "kind": kind}


def test_fifty_identical_batches_at_once_record_each_event_once(
    session: Any, live_server: Any
) -> None:
    course = make_course(session)
    lessons = [make_lesson(session, course) for _ in range(6)]
    student = make_user(session)
    enrollment = make_enrollment(session, student, course)
    token = issue_tokens(session, student).access
    session.commit()
    events = [_event(lessons[0].id, "viewed")] + [_event(lesson.id) for lesson in lessons[:4]]
    responses = asyncio.run(_fire(live_server.url, [(token, enrollment.id, events)] * 50))
    assert {r.status_code for r in responses} == {200}, [r.text for r in responses][:3]
    bodies = [r.json() for r in responses]
    assert sum(b["accepted"] for b in bodies) == len(events)
    assert sum(b["duplicates"] for b in bodies) == 49 * len(events)
    session.expire_all()
    rows = session.execute(
        select(LessonProgress.lesson_id, LessonProgress.completed_at).where(
            LessonProgress.enrollment_id == enrollment.id
        )
    ).all()
    assert sorted(lesson for lesson, _ in rows) == sorted(lesson.id for lesson in lessons[:4])
    assert all(completed is not None for _, completed in rows)
    assert session.get(Enrollment, enrollment.id).completed_lessons == 4
    recorded = session.execute(select(func.count()).select_from(ProgressEvent)).scalar()
    assert recorded == len(events)  # each changed something once
    assert {b["progress"]["completed_lessons"] for b in bodies} == {4}


def test_last_lessons_completed_at_once_complete_the_course_exactly_once(
    session: Any, live_server: Any, smtp_server: Any
) -> None:
    """Twenty students each finish their last two lessons with two simultaneous requests."""
    course = make_course(session, title="Concurrency 101")
    lessons = [make_lesson(session, course) for _ in range(3)]
    requests: list[tuple[str, int, list[dict[str, Any]]]] = []
    students: dict[int, str] = {}
    for _ in range(20):
        student = make_user(session)
        enrollment = make_enrollment(session, student, course)
        session.add(
            LessonProgress(
                enrollment_id=enrollment.id,
                lesson_id=lessons[0].id,
                viewed_at=enrollment.created_at,
                completed_at=enrollment.created_at,
            )
        )
        enrollment.completed_lessons = 1
        token = issue_tokens(session, student).access
        requests.append((token, enrollment.id, [_event(lessons[1].id)]))
        requests.append((token, enrollment.id, [_event(lessons[2].id)]))
        students[enrollment.id] = student.email
    session.commit()
    responses = asyncio.run(_fire(live_server.url, requests))
    assert {r.status_code for r in responses} == {200}
    completions: dict[int, set[str]] = {}
    for r in responses:
        body = r.json()
        if body["completed_at"]:
            completions.setdefault(body["enrollment"], set()).add(body["completed_at"])
    assert set(completions) == set(students)
    assert all(len(stamps) == 1 for stamps in completions.values())
    session.expire_all()
    jobs = session.execute(
        select(OutboxJob.args).where(OutboxJob.job_name == "course_completed")
    ).scalars()
    assert sorted(args["enrollment_id"] for args in jobs) == sorted(students)
    stored = session.execute(
        select(Enrollment.id, Enrollment.completed_at, Enrollment.completed_lessons)
    ).all()
    for enrollment_id, completed_at, completed_lessons in stored:
        assert completed_lessons == 3
        assert {completed_at.isoformat().replace("+00:00", "Z")} == completions[enrollment_id]
    work_burst()
    work_burst()  # nothing more to do: still one email each
    received = sorted(str(m["To"]) for m in smtp_server.messages)
    assert received == sorted(students.values())
    assert all("Concurrency 101" in str(m["Subject"]) for m in smtp_server.messages)
