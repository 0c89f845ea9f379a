"""A cache hit leaves nothing for the cyclic garbage collector.

Objects that only the collector can free make its passes frequent, and a full pass stops
every request in flight: at tens of thousands of hits a second, one reference cycle per
request (the request context and the scope holding each other) gave a full pass about
every second and tens of milliseconds at p99. What a hit allocates must go by reference
counting alone.
"""

from __future__ import annotations

import asyncio
import gc
import json
from collections import Counter
from typing import Any

from bench.hit_cpu import call_app
from tests.factories import DEFAULT_PASSWORD, make_course, make_user


def test_cache_hits_leave_no_cyclic_garbage(app: Any, session: Any) -> None:
    owner = make_user(session, "instructor", username="ada")
    course = make_course(session, owner=owner, title="Kept by reference counting")
    session.commit()
    detail, listing, me = f"/api/v1/courses/{course.id}/", "/api/v1/courses/", "/api/v1/auth/me/"

    async def run() -> tuple[list[tuple[str, int, bytes | None]], list[Any]]:
        login = json.dumps({"username": "ada", "password": DEFAULT_PASSWORD}).encode()
        status, _, body = await call_app(
            app, "/api/v1/auth/login/", [(b"content-type", b"application/json")], "POST", login
        )
        assert status == 200, body
        bearer = [(b"authorization", b"Bearer " + json.loads(body)["access"].encode())]
        kinds = [(detail, []), (listing, []), (listing, bearer), (me, bearer)]
        for path, headers in kinds * 3:  # the misses build the entries, then all are hits
            await call_app(app, path, headers)
        answers: list[tuple[str, int, bytes | None]] = []
        gc.collect()
        gc.set_debug(gc.DEBUG_SAVEALL)  # what the collector finds is kept, not freed
        try:
            for _ in range(50):
                for path, headers in kinds:
                    status, response_headers, _ = await call_app(app, path, headers)
                    answers.append((path, status, response_headers.get(b"x-cache")))
            gc.collect()
            garbage = list(gc.garbage)
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
        return answers, garbage

    answers, garbage = asyncio.run(run())
    assert {status for _, status, _ in answers} == {200}
    # Catalogue answers say so; /auth/me/ hits are answered in front of the routes too
    # (no X-Cache header there), so the count of its answers is all this can check.
    assert {cache for path, _, cache in answers if path != me} == {b"hit"}
    assert Counter(type(o).__qualname__ for o in garbage) == Counter()
