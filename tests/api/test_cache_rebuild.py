"""Reads after writes: when a write retires cached entries, the concurrent reads of one
entry send one request per process to the route (which rebuilds it); the others wait on
the event loop, holding no thread, and are answered from the rebuilt entry."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from eduflow.db import session_scope
from eduflow.models.users import Role
from eduflow.services import courses
from eduflow.services.permissions import Principal
from tests.factories import make_course, make_user

LIST = "/api/v1/courses/"


def _spy_routed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    original = FastAPI.__call__

    async def spy(self: Any, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            seen.append(scope["path"])
        await original(self, scope, receive, send)

    monkeypatch.setattr(FastAPI, "__call__", spy)
    return seen


async def _burst(app: Any, paths: list[str]) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        return list(await asyncio.gather(*(http.get(p) for p in paths)))


def test_concurrent_reads_of_a_retired_entry_rebuild_it_once(
    app: Any, client: Any, session: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = make_user(session, Role.instructor)
    ids = [make_course(session, owner=owner, title=f"Course {i}").id for i in range(3)]
    session.commit()
    details = [f"{LIST}{course_id}/" for course_id in ids]
    for path in details:
        client.get(path)
        assert client.get(path).headers["x-cache"] == "hit"
    actor = Principal(id=owner.id, username=owner.username, role=Role.instructor)
    with session_scope() as other:  # retires every course's entry
        for course_id in ids:
            courses.update_course(other, actor, course_id, {"title": f"New {course_id}"})
    routed = _spy_routed(monkeypatch)
    # Waiters give up after WAIT_FOR_REBUILD; a loaded machine must not make them.
    monkeypatch.setattr("eduflow.api.rebuild_waits.WAIT_FOR_REBUILD", 30.0)

    answers = asyncio.run(_burst(app, details * 15))

    assert [a.status_code for a in answers] == [200] * 45
    assert {a.json()["title"] for a in answers} == {f"New {course_id}" for course_id in ids}
    assert sorted(routed) == sorted(details)  # one rebuild per entry, the rest waited
    hits = [a for a in answers if a.headers["x-cache"] == "hit"]
    assert len(hits) >= 42
