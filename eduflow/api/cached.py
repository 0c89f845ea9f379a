"""Fast path: catalogue and ``/auth/me/`` hits answered in front of the application.

``EduFlowAPI`` asks this layer first, before FastAPI's middleware, routing and
dependencies (hits still get ``X-Request-ID``, ``X-Response-Time-ms``, the access log and
the request metrics, from the same helpers as ``RequestContextMiddleware``). For a ``GET``
of a course list page, a course or a lesson list it reads, in one ``MGET``, the caller's
auth state (when a token is sent: ``services.auth`` decides whether the cached state
admits it), the generation tokens and the entry of the caller's audience. With Redis the
read is usually answered by the near cache of ``eduflow.cache.near`` (exact: Redis
pushes an invalidation for every key changed since it was read), so a hit makes no round
trip at all. When the caller is confirmed and the entry is current and visible to them,
the stored bytes are sent. Anything else -- a miss, an unknown or rejected token, auth
state not cached, a draft, a cache outage -- goes on to the routes, which check
everything in full and build and store the entry under the same key
(``eduflow.cache.responses``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from starlette.types import Scope, Send

from eduflow.api.cache_targets import fast_plan
from eduflow.api.context import RequestContext, log_fast_path_error
from eduflow.api.credentials import fast_path_claims, verified_claims
from eduflow.api.etag import etag_matches
from eduflow.api.paths import COURSE_ROUTE, ME_PATH
from eduflow.api.rebuild_waits import RebuildWaits
from eduflow.api.refresh import RefreshAhead
from eduflow.api.response_cache import visible_to
from eduflow.cache.health import CACHE_TIMEOUT, STATS_KEY, get_cache_store, health, stats
from eduflow.cache.responses import (
    Entry,
    Plan,
    current_entry,
    response_headers,
    tag_of,
)
from eduflow.config import get_settings, reveal
from eduflow.models.users import Role
from eduflow.services.auth_state import (
    auth_state_keys,
    cached_principal,
    cached_profile,
    profile_key,
)
from eduflow.services.permissions import Principal

RECENT_ENTRIES = 1024  # decoded entries kept per process (used only while current)
RECENT_PLANS = 10_000  # request shapes -> cache entry, per process
ME_NAMESPACE = "me"
NO_STORE = (b"cache-control", b"no-store")


def _provisional(user_id: Any, role: Any) -> Principal:
    """The caller a token names, to pick an audience; confirmed by the cached state."""
    return Principal(id=int(user_id), username="", role=Role(role), session_id="")


def _remember(memo: dict[Any, Any], key: Any, value: Any, client: Any, version: int) -> None:
    """Keep a decision taken from near-cache values (read at ``version``) only when every
    value it rests on is tracked and none has been dropped since."""
    if client is not None and client.tracking and client.version == version:
        if len(memo) >= RECENT_PLANS:
            memo.clear()
        memo[key] = value


@dataclass(slots=True)
class Known:
    """A decoded entry kept in this process, with the headers of its 200 answer."""

    entry: Entry
    headers: list[tuple[bytes, bytes]]


@dataclass(frozen=True, slots=True)
class Target:
    """What a catalogue GET maps to: its cache entry and the route template it is
    counted under in the request metrics."""

    plan: Plan
    route: str


@dataclass(frozen=True, slots=True)
class Decision:
    """A hit as decided from near-cache values, valid while the client's near cache
    version is unchanged (no kept value dropped since)."""

    known: Known
    route: str
    namespace: str
    user_id: int | None
    client: Any
    version: int


class CachedReads:
    """Answers current cache entries visible to the caller, in front of the application."""

    def __init__(self) -> None:
        self._client: Any = None
        self._client_key: tuple[str | None, object] | None = None
        self._settings: object = None
        self._loop: object = None
        self._recent: dict[str, Known] = {}
        self._targets: dict[tuple[object, ...], Target | None] = {}
        self._decided: dict[tuple[object, ...], Decision] = {}
        # /auth/me/ answers decided from near-cache values, by (user, role, login session):
        # (body, caller, client, near-cache version), valid while that version is unchanged.
        self._profiles: dict[tuple[object, ...], tuple[bytes, Principal, Any, int]] = {}
        self.rebuilds = RebuildWaits()
        self.refresh: RefreshAhead | None = None  # set by create_app

    def near_client(self) -> Any:
        """The near-cache Redis client of the running loop (None on the embedded default)."""
        settings, loop = get_settings(), asyncio.get_running_loop()
        if self._settings is settings and self._loop is loop:
            return self._client
        url = reveal(settings.redis_url)
        if (url, loop) != self._client_key:
            from eduflow.cache.near import connect

            self._client = connect(url, CACHE_TIMEOUT) if url else None
            self._client_key = (url, loop)
        self._settings, self._loop = settings, loop
        return self._client

    async def read(
        self, keys: tuple[str, ...], namespace: str, near: bool = True
    ) -> list[bytes | None] | None:
        """Values of ``keys``: from the near cache when it holds them all (no round trip),
        else one ``MGET`` that also keeps them there (unless not ``near``); None when the
        backend fails."""
        client = self.near_client()
        try:
            if client is None:
                return get_cache_store().mget(*keys)
            kept: list[bytes | None] | None = client.near(keys) if near else None
            if kept is not None:
                return kept
            values: list[bytes | None] = await client.mget(*keys, near=near)
            return values
        except Exception as exc:  # any backend failure: the routes serve from the database
            health.failed(namespace, exc)
            return None

    async def _lookup(
        self, plan: Plan, claims: dict[str, Any] | None
    ) -> tuple[Known, Principal | None] | str | None:
        """The current entry and the confirmed caller, in one read; the entry's key when
        the caller is confirmed but the entry is missing or stale (a miss); None otherwise.

        Entries seen before are kept in this process (decoded): while their generation
        tokens are current only the tokens are read, not the bytes again.
        """
        auth_keys = auth_state_keys(claims) if claims is not None else ()
        known = self._recent.get(plan.key)
        keys = (*auth_keys, *plan.deps) if known else (*auth_keys, *plan.deps, plan.key)
        values = await self.read(keys, plan.namespace)
        if values is None:
            return None
        actor = None
        if claims is not None:
            actor = cached_principal(claims, values[0], values[1])
            if actor is None:
                return None
        gens = values[len(auth_keys) : len(auth_keys) + len(plan.deps)]
        if None in gens:
            return None
        tag = tag_of(gens)
        if known is None or known.entry.tag != tag:
            if known is not None:  # changed since: read the entry itself
                values = await self.read((plan.key,), plan.namespace)
                if values is None:
                    return None
            entry = current_entry(plan, gens, values[-1])
            if entry is None:
                return plan.key
            if len(self._recent) >= RECENT_ENTRIES:
                self._recent.clear()
            known = self._recent[plan.key] = Known(
                entry, response_headers(entry, True, with_body=True)
            )
            if self._client is not None:  # decoded above: the raw bytes need not stay near
                self._client.drop(plan.key)
        if not visible_to(known.entry, actor):
            return None
        return known, actor

    async def principal(self, token: str) -> Principal | None:
        """The caller of a valid access token whose cached state admits it, read like a
        cache hit's (near cache, else one ``MGET``); None when that cannot confirm it --
        then ``services.auth`` decides, from the database if need be."""
        if not health.healthy:
            return None
        claims = verified_claims(token)
        if claims is None:
            return None
        values = await self.read(auth_state_keys(claims), ME_NAMESPACE)
        return cached_principal(claims, values[0], values[1]) if values is not None else None

    async def _profile(self, claims: dict[str, Any]) -> tuple[bytes, Principal] | None:
        """The caller's cached ``/auth/me/`` body and the confirmed caller, in one read
        with the auth state; None when either is missing or stale (the route decides).

        As for the catalogue's hits (``_decide``), an answer decided from near-cache values
        is reused while none of them has been dropped since: what it rests on is the
        token's user, role and login session (all ``cached_principal`` reads of it) and
        those values."""
        client = self.near_client()
        memo = (claims["sub"], claims["role"], claims["sid"])
        kept = self._profiles.get(memo)
        if kept is not None and kept[2] is client and kept[3] == client.version:
            return kept[0], kept[1]
        version = client.version if client is not None else -1
        keys = (*auth_state_keys(claims), profile_key(int(claims["sub"])))
        values = await self.read(keys, ME_NAMESPACE)
        if values is None:
            return None
        actor = cached_principal(claims, values[0], values[1])
        body = cached_profile(values[0], values[2]) if actor is not None else None
        if actor is None or body is None:
            return None
        _remember(self._profiles, memo, (body, actor, client, version), client, version)
        return body, actor

    async def _flush_stats(self, pending: dict[str, int]) -> None:
        """Add this process's figures to the shared ones (at most once a second)."""
        client = self.near_client()
        if client is None or not pending:
            return
        try:
            await client.hincrby_many(STATS_KEY, pending)
        except Exception:  # figures are best effort; keep them for the next flush
            stats.give_back(pending)

    def _target(
        self, scope: Scope, memo_key: tuple[object, ...], who: tuple[Any, ...] | None
    ) -> Target | None:
        """What this GET maps to, remembered by everything that decides it (``memo_key``:
        path, query and the caller's id, role and login session; not the Host: list
        pages link from EDUFLOW_PUBLIC_BASE_URL)."""
        try:
            return self._targets[memo_key]
        except KeyError:
            pass
        target = None
        found = fast_plan(scope, _provisional(who[0], who[1]) if who else None)
        if found is not None:
            plan, params = found
            target = Target(plan, COURSE_ROUTE if params else scope["path"])
        if len(self._targets) >= RECENT_PLANS:
            self._targets.clear()
        self._targets[memo_key] = target
        return target

    async def _hit(
        self, scope: Scope, headers: list[tuple[bytes, bytes]]
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes, str] | str | None:
        """Status, headers, body and route template of the cached answer to this GET; the
        entry's key on a miss; None to go on to the application (rejected or unknown
        token, draft, cache outage)."""
        etags = None
        for name, value in headers:
            if name == b"if-none-match":
                etags = value
        claims = fast_path_claims(headers)
        if claims is False:
            return None
        if scope["path"] == ME_PATH:
            profile = await self._profile(claims) if claims is not None else None
            if profile is None:
                return None
            body, caller = profile
            scope["state"]["user_id"] = caller.id
            stats.record(ME_NAMESPACE, "hits")
            me_headers = [
                (b"content-type", b"application/json"),
                (b"content-length", b"%d" % len(body)),
                NO_STORE,
            ]
            return 200, me_headers, body, ME_PATH
        # The login session is part of it: a decision taken for one session of a user
        # must not admit another (maybe revoked) one.
        who = (claims["sub"], claims["role"], claims["sid"]) if claims is not None else None
        memo_key = (scope["path"], scope["query_string"], who)
        # With the near cache, a hit decided before is reused while no kept value has been
        # dropped since: a dictionary lookup instead of reading and checking the auth
        # state, the generations and the entry again (checked here, not in ``_decide``:
        # that is most hits, and they need no coroutine of their own).
        client = self.near_client()
        decided = self._decided.get(memo_key)
        if (
            decided is None
            or decided.client is not client
            or client is None
            or decided.version != client.version
        ):
            fresh = await self._decide(scope, memo_key, who, claims, client)
            if fresh is None or isinstance(fresh, str):
                return fresh
            decided = fresh
        if decided.user_id is not None:
            scope["state"]["user_id"] = decided.user_id
        stats.record(decided.namespace, "hits")
        entry = decided.known.entry
        if etags is not None and etag_matches(etags, entry.etag):
            return 304, response_headers(entry, True, with_body=False), b"", decided.route
        return 200, [*decided.known.headers], entry.body, decided.route

    async def _decide(
        self,
        scope: Scope,
        memo_key: tuple[object, ...],
        who: tuple[Any, ...] | None,
        claims: dict[str, Any] | None,
        client: Any,
    ) -> Decision | str | None:
        """The hit this request gets, if any, decided from the values read now (``client``:
        the near-cache client, None on the embedded default); kept for the next requests
        of the same shape when ``client`` has them tracked."""
        target = self._target(scope, memo_key, who)
        if target is None:
            return None
        version = client.version if client is not None else -1
        hit = await self._lookup(target.plan, claims)
        if hit is None or isinstance(hit, str):
            return hit
        known, actor = hit
        decided = Decision(
            known,
            target.route,
            target.plan.namespace,
            actor.id if actor is not None else None,
            client,
            version,
        )
        _remember(self._decided, memo_key, decided, client, version)
        if self.refresh is not None and client is not None and visible_to(known.entry, None):
            # Kept only when an anonymous request shares the entry: that is how it is rebuilt.
            anon = self._target(scope, (*memo_key[:2], None), None) if who else target
            if anon is not None and anon.plan.key == target.plan.key:
                self.refresh.note(target.plan, scope, known.entry.tag)
        return decided

    async def _after_rebuild(
        self, key: str, scope: Scope
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes, str] | None:
        """A miss of entry ``key``: the answer once another request of this process has
        rebuilt it; None when this request is the one to go on to the route."""
        if not await self.rebuilds.wait(key, scope):
            return None
        again = await self._hit(scope, scope["headers"])
        return again if not isinstance(again, str) else None

    async def answer(self, scope: Scope, send: Send, context: RequestContext | None = None) -> bool:
        """Send the cached answer to a catalogue or ``/auth/me/`` GET when there is one
        (True); False leaves the request, untouched, to the application.

        A hit gets what every response gets, from the same request context
        (``eduflow.api.context``): the request id and timing headers, the access log line
        and the request metrics.
        """
        # After an outage the routes probe and recover the cache (a blocking call) first.
        if not health.healthy:
            return False
        context = context or RequestContext.of(scope)
        try:
            hit = await self._hit(scope, scope["headers"])
            if isinstance(hit, str):
                hit = await self._after_rebuild(hit, scope)
        except Exception as exc:  # a bug here must not cost the request: the routes answer
            log_fast_path_error(scope, exc)
            hit = None
        if hit is None:
            scope["state"].pop("user_id", None)
            return False
        status, headers, body, route = hit
        headers += context.starting(status, route)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        context.finish(status, route=route)
        if context.start >= stats.due_at:  # same clock; at most once a second
            await self._flush_stats(stats.take_due())
        return True
