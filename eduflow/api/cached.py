"""Fast path: catalogue hits answered before FastAPI's routing and dependencies.

A pure ASGI layer inside ``RequestContextMiddleware`` (so hits keep ``X-Request-ID``,
``X-Response-Time-ms``, the access log and the request metrics). For a ``GET`` of a
course list page, a course or a lesson list it makes one round trip to the cache: one
``MGET`` of the caller's auth state (when a token is sent: ``services.auth`` decides
whether the cached state admits it), the generation tokens and the entry of the caller's
audience. When the caller is confirmed and the entry is current and visible to them, the
stored bytes are sent. Anything else -- a miss, an unknown or rejected token, auth state
not cached, a draft, a cache outage -- goes on to the routes, which check everything
in full and build and store the entry under the same key (``eduflow.api.response_cache``).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from eduflow.api.response_cache import (
    Entry,
    Plan,
    course_detail_plan,
    course_list_audience,
    course_list_plan,
    etag_matches,
    if_none_match,
    lesson_list_audience,
    lesson_list_plan,
    response_headers,
    tag_of,
)
from eduflow.cache import CACHE_TIMEOUT, STATS_KEY, get_cache_store, health, stats
from eduflow.models.users import Role
from eduflow.security import decode_token
from eduflow.services.auth import auth_state_keys, cached_principal, cached_profile, profile_key
from eduflow.services.permissions import Principal

COURSES_PATH = "/api/v1/courses/"
RECENT_ENTRIES = 1024  # decoded entries kept per process (used only while current)
LESSONS_PATH = "/api/v1/lessons/"
ME_PATH = "/api/v1/auth/me/"
ME_NAMESPACE = "me"
NO_STORE = (b"cache-control", b"no-store")


class FastPathRoute:
    """Stands in for the matched route in the scope, so request metrics get a template."""


FAST_ROUTE = FastPathRoute()


def _is_id(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 10


def fast_plan(scope: Scope, actor: Principal | None) -> tuple[Plan, dict[str, int]] | None:
    """The cache entry a catalogue GET by ``actor`` would be answered from, with the
    request's path parameters; None for any other request."""
    path: str = scope["path"]
    if path == COURSES_PATH:
        plan = course_list_plan(scope, course_list_audience(actor))
        return (plan, {}) if plan is not None else None
    if path == LESSONS_PATH:
        course: int | None = None
        for name, value in parse_qsl(scope["query_string"].decode("latin-1")):
            if name == "course":
                if not _is_id(value):
                    return None
                course = int(value)  # the last one wins, as in the route
        plan = lesson_list_plan(scope, lesson_list_audience(actor), course)
        return (plan, {}) if plan is not None else None
    if path.startswith(COURSES_PATH) and path.endswith("/"):
        course_id = path[len(COURSES_PATH) : -1]
        if _is_id(course_id):
            return course_detail_plan(int(course_id)), {"course_id": int(course_id)}
    return None


def _claims(scope: Scope) -> dict[str, Any] | bool | None:
    """The verified access-token claims (None: anonymous; False: leave it to the routes,
    which answer a bad token with a 401)."""
    header = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            header = value
            break
    if header is None:
        return None
    scheme, _, token = header.decode("latin-1").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return False
    return _verified_claims(token.strip()) or False


# Verified claims by token: a client sends the same access token for its whole lifetime,
# and checking an HS256 signature costs more than the rest of a cached answer. The
# signature is a property of the string, so only the expiry needs checking again;
# revocation, deactivation and role changes are checked on every request (auth state).
_verified: dict[str, dict[str, Any]] = {}
_verified_under: list[object] = [None]
VERIFIED_TOKENS = 10_000


def _verified_claims(token: str) -> dict[str, Any] | None:
    """The claims of a valid, unexpired access token; None otherwise."""
    from eduflow.config import get_settings

    settings = get_settings()
    if _verified_under[0] is not settings:  # new settings (maybe a new key): start over
        _verified.clear()
        _verified_under[0] = settings
    claims = _verified.get(token)
    if claims is None:
        try:
            claims = decode_token(token, "access")
            Role(claims["role"])
            float(claims["exp"])
        except Exception:
            return None
        if len(_verified) >= VERIFIED_TOKENS:
            _verified.clear()
        _verified[token] = claims
    if time.time() >= float(claims["exp"]):
        _verified.pop(token, None)
        return None
    return claims


def _provisional(claims: dict[str, Any]) -> Principal:
    """The caller the token names, to pick an audience; confirmed by the cached state."""
    return Principal(
        id=int(claims["sub"]), username="", role=Role(claims["role"]), session_id=claims["sid"]
    )


class CachedReads:
    """Answers current, public cache entries; passes everything else on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._client: Any = None
        self._client_key: tuple[object, str] | None = None
        self._recent: dict[str, Entry] = {}

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

    async def _mget(self, keys: tuple[str, ...], namespace: str) -> list[bytes | None] | None:
        client = self._redis()
        try:
            if client is None:
                return get_cache_store().mget(*keys)
            values: list[bytes | None] = await client.mget(*keys)
            return values
        except Exception as exc:  # any backend failure: the routes serve from the database
            health.failed(namespace, exc)
            return None

    async def _lookup(
        self, plan: Plan, claims: dict[str, Any] | None
    ) -> tuple[Entry, Principal | None] | None:
        """The current entry and the confirmed caller, in one round trip; None otherwise.

        Entries seen before are kept in this process (decoded): while their generation
        tokens are current only the tokens are read, not the bytes again.
        """
        auth_keys = auth_state_keys(claims) if claims is not None else ()
        known = self._recent.get(plan.key)
        keys = (*auth_keys, *plan.deps) if known else (*auth_keys, *plan.deps, plan.key)
        values = await self._mget(keys, plan.namespace)
        if values is None:
            return None
        actor = None
        if claims is not None:
            actor = cached_principal(claims, values[0], values[1])
            if actor is None:
                return None
        gens = values[len(auth_keys) : len(auth_keys) + len(plan.deps)]
        if any(g is None for g in gens):
            return None
        tag = tag_of(gens)
        if known is None or known.tag != tag:
            if known is not None:  # changed since: read the entry itself
                values = await self._mget((plan.key,), plan.namespace)
                if values is None:
                    return None
            raw = values[-1]
            known = Entry.decode(raw) if raw is not None else None
            if known is None or known.deps != plan.deps or known.tag != tag:
                return None
            if len(self._recent) >= RECENT_ENTRIES:
                self._recent.clear()
            self._recent[plan.key] = known
        if not known.visible_to(actor):
            return None
        return known, actor

    async def _profile(self, claims: dict[str, Any]) -> tuple[bytes, Principal] | None:
        """The caller's cached ``/auth/me/`` body and the confirmed caller, in one ``MGET``
        with the auth state; None when either is missing or stale (the route decides)."""
        keys = (*auth_state_keys(claims), profile_key(int(claims["sub"])))
        values = await self._mget(keys, ME_NAMESPACE)
        if values is None:
            return None
        actor = cached_principal(claims, values[0], values[1])
        body = cached_profile(values[0], values[2]) if actor is not None else None
        if actor is None or body is None:
            return None
        return body, actor

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
            claims = _claims(scope)
            if scope["path"] == ME_PATH:
                profile = await self._profile(claims) if isinstance(claims, dict) else None
                if profile is not None:
                    body, caller = profile
                    scope.setdefault("state", {})["user_id"] = caller.id
                    scope["route"] = FAST_ROUTE
                    scope["path_params"] = {}
                    stats.record(ME_NAMESPACE, "hits")
                    headers = [
                        (b"content-type", b"application/json"),
                        (b"content-length", b"%d" % len(body)),
                        NO_STORE,
                    ]
                    await send({"type": "http.response.start", "status": 200, "headers": headers})
                    await send({"type": "http.response.body", "body": body})
                    await self._flush_stats()
                    return
                await self.app(scope, receive, send)
                return
            found = None
            if claims is not False:
                assert not isinstance(claims, bool)
                found = fast_plan(scope, _provisional(claims) if claims else None)
            hit = await self._lookup(found[0], claims) if found and claims is not False else None
            if hit is not None and found is not None:
                entry, actor = hit
                if actor is not None:
                    scope.setdefault("state", {})["user_id"] = actor.id
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
