"""Fast path: anonymous catalogue hits answered before FastAPI's routing and dependencies.

A pure ASGI layer inside ``RequestContextMiddleware`` (so hits keep ``X-Request-ID``,
``X-Response-Time-ms``, the access log and the request metrics). For an anonymous
``GET`` of a course list page, a course or a course's lesson list it makes one round trip
to the cache (``MGET`` of the generation tokens and the entry) and, when the entry is
current and public, sends its stored bytes. Anything else -- a miss, a draft, a caller
with an ``Authorization`` header, a cache outage -- goes on to the routes, which build
and store the entry under the same key (``eduflow.api.response_cache``).
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from eduflow.api.response_cache import (
    PUBLIC,
    Entry,
    Plan,
    course_detail_plan,
    course_list_plan,
    etag_matches,
    if_none_match,
    lesson_list_plan,
    response_headers,
    tag_of,
)
from eduflow.cache import CACHE_TIMEOUT, STATS_KEY, get_cache_store, health, stats

COURSES_PATH = "/api/v1/courses/"
LESSONS_PATH = "/api/v1/lessons/"


class FastPathRoute:
    """Stands in for the matched route in the scope, so request metrics get a template."""


FAST_ROUTE = FastPathRoute()


def _is_id(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 10


def fast_plan(scope: Scope) -> tuple[Plan, dict[str, int]] | None:
    """The cache entry an anonymous GET would be answered from, with its path parameters."""
    for name, _ in scope["headers"]:
        if name == b"authorization":
            return None
    path: str = scope["path"]
    if path == COURSES_PATH:
        plan = course_list_plan(scope, PUBLIC)
        return (plan, {}) if plan is not None else None
    if path == LESSONS_PATH:
        course: int | None = None
        for name, value in parse_qsl(scope["query_string"].decode("latin-1")):
            if name == "course":
                if not _is_id(value):
                    return None
                course = int(value)  # the last one wins, as in the route
        plan = lesson_list_plan(scope, PUBLIC, course)
        return (plan, {}) if plan is not None else None
    if path.startswith(COURSES_PATH) and path.endswith("/"):
        course_id = path[len(COURSES_PATH) : -1]
        if _is_id(course_id):
            return course_detail_plan(int(course_id)), {"course_id": int(course_id)}
    return None


class CachedReads:
    """Answers current, public cache entries; passes everything else on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._client: Any = None
        self._client_key: tuple[object, str] | None = None

    def _redis(self) -> Any:
        """The asyncio Redis client of the running loop (None on the embedded default)."""
        from eduflow.config import get_settings

        url = get_settings().redis_url
        if not url:
            return None
        client_key = (asyncio.get_running_loop(), url)
        if self._client_key != client_key:
            from eduflow.api.redis_pipe import connect

            self._client = connect(url, CACHE_TIMEOUT)
            self._client_key = client_key
        return self._client

    async def _lookup(self, plan: Plan) -> Entry | None:
        client = self._redis()
        try:
            if client is None:
                values = get_cache_store().mget(*plan.deps, plan.key)
            else:
                values = await client.mget(*plan.deps, plan.key)
        except Exception as exc:  # any backend failure: the routes serve from the database
            health.failed(plan.namespace, exc)
            return None
        raw = values[-1]
        if raw is None or any(g is None for g in values[:-1]):
            return None
        entry = Entry.decode(raw)
        if entry is None or entry.deps != plan.deps or not entry.visible_to(None):
            return None
        if entry.tag != tag_of(values[:-1]):
            return None
        return entry

    async def _flush_stats(self) -> None:
        pending = stats.take_due()
        client = self._redis() if pending else None
        if client is None:
            return
        try:
            await client.hincrby_many(STATS_KEY, pending)
        except Exception:  # figures are best effort; keep them for the next flush
            stats.give_back(pending)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer a hit, or hand the request to the application."""
        # After an outage the routes probe and recover the cache (a blocking call) first.
        if scope["type"] == "http" and scope["method"] == "GET" and health.healthy:
            found = fast_plan(scope)
            entry = await self._lookup(found[0]) if found is not None else None
            if entry is not None and found is not None:
                scope["route"] = FAST_ROUTE
                scope["path_params"] = found[1]
                stats.record(found[0].namespace, "hits")
                not_modified = etag_matches(if_none_match(scope), entry.etag)
                await send(
                    {
                        "type": "http.response.start",
                        "status": 304 if not_modified else 200,
                        "headers": response_headers(entry, True, with_body=not not_modified),
                    }
                )
                await send(
                    {"type": "http.response.body", "body": b"" if not_modified else entry.body}
                )
                await self._flush_stats()
                return
        await self.app(scope, receive, send)
