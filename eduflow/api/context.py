"""The request context, in one place for the middleware and both fast paths: the request id,
the timing headers, the logging context variables, the access line and the request metrics.

``EduFlowAPI.__call__`` begins it (``RequestContext(scope)``) as each request arrives; every
later part of the same request gets the same object with ``RequestContext.of(scope)`` (which
begins one only for an application called without that entry point, as some tests do), so
a request that a fast path leaves to the application keeps its id and its start time.
What every response gets -- ``X-Request-ID`` and ``X-Response-Time-ms`` -- comes from
``starting()``, and what every finished request leaves -- one access line, one observation
in the metrics -- from ``finish()``. Extend the access line or the metrics here.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import time
from collections.abc import Mapping
from typing import Any

import structlog
from starlette.types import Scope

from eduflow import tracing
from eduflow.cache.health import stats
from eduflow.logging import (
    access_logger_ready,
    agent_text,
    flush_access_lines,
    get_logger,
    write_access_line,
)
from eduflow.metrics import UNMATCHED_ROUTE, observe_request, publish_tallies
from eduflow.tracing import name_span

# A kept incoming id must be harmless in headers and logs.
_VALID_REQUEST_ID = re.compile(rb"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_UNROUTED_PATHS = frozenset({"/api/schema/"})
_STATE_KEY = "request_context"

# Request ids: UUID4-formatted (version and variant bits set), 74 random bits drawn once
# per process and a 48-bit counter: unique, and cheaper than uuid4() per request.
_id_prefix: list[bytes] = []
_id_counter = itertools.count()


def _reseed_request_ids() -> None:
    global _id_counter
    rand = int.from_bytes(os.urandom(10)) & ((1 << 74) - 1)
    hi = rand >> 14  # 60 bits: time_low, time_mid and the 12 bits after the version nibble
    time_low, time_mid, time_hi = hi >> 28, (hi >> 12) & 0xFFFF, hi & 0xFFF
    clock_seq = 0x8000 | (rand & 0x3FFF)  # variant 10xx
    _id_prefix[:] = [f"{time_low:08x}-{time_mid:04x}-4{time_hi:03x}-{clock_seq:04x}-".encode()]
    _id_counter = itertools.count()


_reseed_request_ids()
os.register_at_fork(after_in_child=_reseed_request_ids)


def _new_id() -> bytes:
    return b"%b%012x" % (_id_prefix[0], next(_id_counter) & 0xFFFFFFFFFFFF)


def new_request_id() -> str:
    """A fresh request id in UUID4 format."""
    return _new_id().decode()


def request_id_of(scope: Scope) -> str | None:
    """The request id of the request ``scope`` belongs to (None: no context begun)."""
    state = scope.get("state")
    context = state.get(_STATE_KEY) if state else None
    return context.rid if context is not None else None


def route_template(scope: Scope, status: int = 200) -> str:
    """The matched route as a template (``/api/v1/users/{user_id}/``), for bounded labels.

    Rebuilt from the path and its parameters: included routers keep their own, un-prefixed
    path on the route object, and the OpenAPI document's plain route records none. Anything
    else without a route (404s, slash redirects, responses served before routing) shares one
    label, so raw paths never become label values.
    """
    path: str = scope["path"]
    if scope.get("route") is None:
        return path if path in _UNROUTED_PATHS and status < 300 else UNMATCHED_ROUTE
    params = scope.get("path_params")
    if not params:
        return path
    segments = path.split("/")
    for name, value in params.items():
        text = str(value)
        for i, segment in enumerate(segments):
            if segment == text:
                segments[i] = "{" + name + "}"
                break
    return "/".join(segments)


_access_log: list[Any] = []
PUBLISH_EVERY = 0.1  # seconds a fast answer's log line and metrics may wait for company
_publish_timer: list[asyncio.TimerHandle | None] = [None]


class RequestContext:
    """One request's id, start time and bound logging context (see the module docstring)."""

    __slots__ = ("_tokens", "agent", "finished", "request_id", "scope", "start")

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.start = time.perf_counter()
        # One pass over the headers for what the context needs of them: the first
        # X-Request-ID (kept when harmless, else a fresh id) and the first User-Agent.
        kept: bytes | None = None
        agent: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                if kept is None:
                    kept = value if _VALID_REQUEST_ID.match(value) else b""
            elif name == b"user-agent" and agent is None:
                agent = value
        # Either way only [A-Za-z0-9._:-]: safe in a header and in JSON as it is.
        self.request_id: bytes = kept or _new_id()
        self.agent = agent
        self.finished = False
        state = scope.get("state")
        if state is None:
            state = scope["state"] = {}
        state[_STATE_KEY] = self
        self._tokens: Mapping[str, Any] | None = None

    @property
    def rid(self) -> str:
        """The request id, as text."""
        return self.request_id.decode()

    def bind(self) -> None:
        """Bind the request id to the logging context: every log line and outbox row of
        this request carries it from now on. Whatever runs code that may log does this
        (the middleware, the enrollment fast path); a cache hit logs only its access
        line, which is given the id directly."""
        if self._tokens is None:
            self._tokens = structlog.contextvars.bind_contextvars(request_id=self.rid)

    @classmethod
    def of(cls, scope: Scope) -> RequestContext:
        """The context of this request, begun now if nobody began it yet."""
        state = scope.get("state")
        if state is not None:
            context = state.get(_STATE_KEY)
            if context is not None:
                return context  # type: ignore[no-any-return]
        return cls(scope)

    def starting(self, status: int, route: str = "") -> list[tuple[bytes, bytes]]:
        """What a response starting now adds to its headers -- ``X-Request-ID`` and
        ``X-Response-Time-ms`` -- having named the request's tracing span after its route
        (``route``: known to a fast path; else the matched route's template)."""
        if tracing.enabled:
            name_span(self.scope["method"], route or route_template(self.scope, status))
        elapsed = f"{(time.perf_counter() - self.start) * 1000:.2f}".encode()
        return [(b"x-request-id", self.request_id), (b"x-response-time-ms", elapsed)]

    def finish(self, status: int, route: str = "") -> None:
        """Count the finished request in the metrics, write its access line and unbind its
        logging context.

        Fast answers (``route`` known) are batched: their metrics are tallied and their log
        lines kept, both published together within ``PUBLISH_EVERY`` seconds or by the next
        routed request, whichever comes first: a burst costs one write instead of one each.
        """
        if self.finished:
            return
        self.finished = True
        scope = self.scope
        duration = time.perf_counter() - self.start
        peer = scope.get("client")
        client = peer[0] if peer else None  # uvicorn resolved X-Forwarded-For of a trusted proxy
        batch = bool(route)
        try:
            if batch and _publish_timer[0] is None:
                _publish_timer[0] = asyncio.get_running_loop().call_later(PUBLISH_EVERY, publish)
            route = route or route_template(scope, status)
            observe_request(scope["method"], route, status, duration, batch)
            duration_ms = round(duration * 1000, 2)
            if access_logger_ready():
                write_access_line(
                    scope["method"],
                    scope["path"],
                    status,
                    duration_ms,
                    scope["state"].get("user_id"),
                    None if self._tokens is not None else self.request_id,
                    batch,
                    client,
                    self.agent,
                )
                return
            if not _access_log:
                _access_log.append(get_logger("eduflow.access"))
            _access_log[0].info(
                "request",
                method=scope["method"],
                path=scope["path"],
                status=status,
                duration_ms=duration_ms,
                user_id=scope["state"].get("user_id"),
                client=client,
                user_agent=agent_text(self.agent),
                **({} if self._tokens is not None else {"request_id": self.rid}),
            )
        finally:
            if self._tokens is not None:
                structlog.contextvars.reset_contextvars(**self._tokens)
            # The scope's state holds this context and this context the scope: a cycle that
            # only the cyclic collector frees, four objects for every request (its full
            # passes then stall every request in flight). Broken here, both go by reference
            # counting as soon as the server drops the scope.
            del self.scope


def publish() -> None:
    """Publish tallied request metrics and deferred access log lines now."""
    timer, _publish_timer[0] = _publish_timer[0], None
    if timer is not None:
        timer.cancel()
    stats.publish()
    publish_tallies()
    flush_access_lines()


def log_fast_path_error(scope: Scope, exc: Exception) -> None:
    """Log a failure of a fast path (cached reads, plain enrollments): the request then
    goes to the routes."""
    get_logger("eduflow.error").error("fast_path_failed", path=scope["path"], exc_info=exc)
