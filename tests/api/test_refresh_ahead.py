"""Refresh-ahead (``eduflow.api.refresh``): a public entry this process answered and a
write then retired is rebuilt by the server itself once its writes have gone quiet, so the
next reader finds it built; not before the quiet, and never a draft's."""

from __future__ import annotations

import time
from typing import Any

import pytest

from eduflow.api.refresh import TICK
from eduflow.cache.responses import _lookup, course_detail_plan
from eduflow.db import session_scope
from eduflow.models.users import Role
from eduflow.services import courses
from eduflow.services.permissions import Principal
from tests.factories import make_course, make_user

LIST = "/api/v1/courses/"


def _current(course_id: int) -> bool:
    """Whether the course's detail entry in the cache is current (no reader involved)."""
    entry, _tag = _lookup(course_detail_plan(course_id))
    return entry is not None


def _retire(owner: Any, course_id: int, title: str) -> None:
    actor = Principal(id=owner.id, username=owner.username, role=Role.instructor)
    with session_scope() as other:  # through its own Redis client, as another process would
        courses.update_course(other, actor, course_id, {"title": title})


def _wait_for(condition: Any, seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def _answered_public_course(client: Any, session: Any) -> tuple[Any, int]:
    """A published course whose detail this process has answered from the cache (hot)."""
    owner = make_user(session, Role.instructor)
    course_id = make_course(session, owner=owner, title="Before").id
    session.commit()
    detail = f"{LIST}{course_id}/"
    client.get(detail)
    assert client.get(detail).headers["x-cache"] == "hit"
    return owner, course_id


def test_a_retired_public_entry_is_rebuilt_once_its_writes_are_quiet(
    app: Any, client: Any, session: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    refresh = app.cached_reads.refresh
    owner, course_id = _answered_public_course(client, session)

    monkeypatch.setattr("eduflow.api.refresh.QUIET", 3600.0)
    _retire(owner, course_id, "After")
    time.sleep(3 * TICK)  # three ticks: the tokens moved, but not an hour ago
    assert not _current(course_id) and refresh.rebuilds == 0

    monkeypatch.setattr("eduflow.api.refresh.QUIET", 0.0)
    assert _wait_for(lambda: _current(course_id)), "the retired entry was not rebuilt"
    assert refresh.rebuilds == 1
    answer = client.get(f"{LIST}{course_id}/")
    assert answer.headers["x-cache"] == "hit" and answer.json()["title"] == "After"


def test_an_entry_only_its_owner_may_see_is_left_to_its_readers(
    app: Any, client: Any, session: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.api.test_near_cache_api import _login

    monkeypatch.setattr("eduflow.api.refresh.QUIET", 0.0)
    owner = make_user(session, Role.instructor, username="drafter")
    draft = make_course(session, owner=owner, title="Draft", is_published=False).id
    public = make_course(session, owner=owner, title="Public").id
    session.commit()
    headers = {"Authorization": f"Bearer {_login(client, 'drafter')['access']}"}
    for course_id in (draft, public):
        client.get(f"{LIST}{course_id}/", headers=headers)
        assert client.get(f"{LIST}{course_id}/", headers=headers).headers["x-cache"] == "hit"
    _retire(owner, draft, "Draft 2")
    _retire(owner, public, "Public 2")
    # The public one, read by the same instructor, is shared with anonymous callers.
    assert _wait_for(lambda: _current(public))
    time.sleep(2 * TICK)
    assert not _current(draft) and app.cached_reads.refresh.rebuilds == 1


def test_a_process_busy_writing_leaves_rebuilding_until_its_writes_stop(
    app: Any, client: Any, session: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    refresh = app.cached_reads.refresh
    monkeypatch.setattr("eduflow.api.refresh.QUIET", 0.0)
    monkeypatch.setattr("eduflow.api.refresh.BUSY_WRITES", 0)  # one write a tick is busy
    owner, course_id = _answered_public_course(client, session)

    _retire(owner, course_id, "After")
    until = time.monotonic() + 4 * TICK
    while time.monotonic() < until:  # writes (refused ones count too) in every tick
        assert client.post("/api/v1/auth/login/", json={}).status_code == 422
        time.sleep(TICK / 10)
    assert not _current(course_id) and refresh.rebuilds == 0

    assert _wait_for(lambda: _current(course_id)), "not rebuilt once the writes stopped"
    assert refresh.rebuilds == 1
