"""One pure-ASGI middleware for what every request needs: id, timing, body limit, log, metrics.

Pure ASGI (not ``BaseHTTPMiddleware``) keeps the per-request cost to a few microseconds:
no extra task, no response re-streaming, headers appended to the start message in place.
It also renders unhandled exceptions itself: Starlette's ``Exception`` handler runs in
``ServerErrorMiddleware`` *outside* user middleware, where a 500 would lose its
``X-Request-ID``; here the 500 problem gets the id, the log line gets the traceback.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import time
from typing import Any

import structlog
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from eduflow.logging import (
    access_logger_ready,
    flush_access_lines,
    get_logger,
    write_access_line,
)
from eduflow.metrics import UNMATCHED_ROUTE, observe_request, publish_tallies
from eduflow.tracing import is_enabled as tracing_on
from eduflow.tracing import name_span

# A kept incoming id must be harmless in headers and logs.
_VALID_REQUEST_ID = re.compile(rb"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_UNROUTED_PATHS = frozenset({"/api/schema/"})


# Request ids: UUID4-formatted (version and variant bits set), 74 random bits drawn once
# per process and a 48-bit counter: unique, and ~1 µs cheaper than uuid4()'s
# os.urandom call and UUID object per request.
_id_prefix: list[str] = []
_id_counter = itertools.count()


def _reseed_request_ids() -> None:
    global _id_counter
    rand = int.from_bytes(os.urandom(10)) & ((1 << 74) - 1)
    hi = rand >> 14  # 60 bits: time_low, time_mid and the 12 bits after the version nibble
    time_low, time_mid, time_hi = hi >> 28, (hi >> 12) & 0xFFFF, hi & 0xFFF
    clock_seq = 0x8000 | (rand & 0x3FFF)  # variant 10xx
    _id_prefix[:] = [f"{time_low:08x}-{time_mid:04x}-4{time_hi:03x}-{clock_seq:04x}-"]
    _id_counter = itertools.count()


_reseed_request_ids()
os.register_at_fork(after_in_child=_reseed_request_ids)


def new_request_id() -> str:
    """A fresh request id in UUID4 format."""
    return f"{_id_prefix[0]}{next(_id_counter) & 0xFFFFFFFFFFFF:012x}"


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` once a streamed body passes the limit (rendered as 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body exceeds {limit} bytes")


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


def request_id_of(scope: Scope) -> bytes:
    """The caller's ``X-Request-ID`` when it is harmless, else a fresh one."""
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            return value if _VALID_REQUEST_ID.match(value) else new_request_id().encode()
    return new_request_id().encode()


def response_time(start: float) -> bytes:
    """The ``X-Response-Time-ms`` value of a response started now."""
    return f"{(time.perf_counter() - start) * 1000:.2f}".encode()


_access_log: list[Any] = []
PUBLISH_EVERY = 0.1  # seconds a cache hit's log line and metrics may wait for company
_publish_timer: list[asyncio.TimerHandle | None] = [None]


def finish_request(
    scope: Scope, status: int, start: float, request_id: str | None = None, route: str = ""
) -> None:
    """Count a finished request in the metrics and write its access log line.

    Cache hits (``request_id`` not bound to the logging context, ``route`` known) are
    batched: their metrics are tallied and their log lines kept, both published together
    within ``PUBLISH_EVERY`` seconds or by the next routed request, whichever comes
    first: a burst of hits costs one write instead of one per hit.
    """
    duration = time.perf_counter() - start
    user_id = scope["state"].get("user_id")
    batch = bool(route)
    if batch and _publish_timer[0] is None:
        _publish_timer[0] = asyncio.get_running_loop().call_later(PUBLISH_EVERY, publish)
    route = route or route_template(scope, status)
    observe_request(scope["method"], route, status, duration, batch)
    peer = scope.get("client")
    client = peer[0] if peer else None  # uvicorn resolved X-Forwarded-For of a trusted proxy
    user_agent = None
    for name, value in scope["headers"]:
        if name == b"user-agent":
            user_agent = value.decode("latin-1")
            break
    if access_logger_ready():
        write_access_line(
            scope["method"],
            scope["path"],
            status,
            round(duration * 1000, 2),
            user_id,
            request_id,
            defer=batch,
            client=client,
            user_agent=user_agent,
        )
        return
    if not _access_log:
        _access_log.append(get_logger("eduflow.access"))
    extra = {"request_id": request_id} if request_id is not None else {}
    _access_log[0].info(
        "request",
        method=scope["method"],
        path=scope["path"],
        status=status,
        duration_ms=round(duration * 1000, 2),
        user_id=user_id,
        client=client,
        user_agent=user_agent[:256] if user_agent else user_agent,
        **extra,
    )


def publish() -> None:
    """Publish tallied request metrics and deferred access log lines now."""
    timer, _publish_timer[0] = _publish_timer[0], None
    if timer is not None:
        timer.cancel()
    publish_tallies()
    flush_access_lines()


def log_fast_path_error(scope: Scope, exc: Exception) -> None:
    """Log a failure of a fast path (cached reads, plain enrollments): the request then
    goes to the routes."""
    get_logger("eduflow.error").error("fast_path_failed", path=scope["path"], exc_info=exc)


class RequestContextMiddleware:
    """X-Request-ID, X-Response-Time-ms, the 1 MiB body limit, the access log and metrics."""

    def __init__(self, app: ASGIApp, max_body_bytes: int | None = None) -> None:
        from eduflow.config import get_settings

        self.app = app
        self.max_body = max_body_bytes or get_settings().max_body_bytes
        self.error_log = get_logger("eduflow.error")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection scope."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        content_length: int | None = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                content_length = int(value) if value.isdigit() else None
        request_id = request_id_of(scope)
        rid = request_id.decode()
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = rid
        tokens = structlog.contextvars.bind_contextvars(request_id=rid)
        status = 500
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                if tracing_on():  # named before the response ends the span
                    name_span(scope["method"], route_template(scope, status))
                headers = list(message.get("headers", ()))
                headers.append((b"x-request-id", request_id))
                headers.append((b"x-response-time-ms", response_time(start)))
                message["headers"] = headers
            await send(message)

        app_receive = receive
        if scope["method"] in _BODY_METHODS:
            limit = self.max_body
            received = 0

            async def limited_receive() -> Message:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > limit:
                        raise BodyTooLarge(limit)
                return message

            app_receive = limited_receive
        try:
            if content_length is not None and content_length > self.max_body:
                raise BodyTooLarge(self.max_body)
            await self.app(scope, app_receive, send_with_headers)
        except BodyTooLarge as exc:
            if started:
                raise
            await self._problem(scope, send_with_headers, exc)
        except Exception as exc:
            if started:
                self.error_log.error("unhandled_exception", path=scope["path"], exc_info=exc)
                raise
            await self._problem(scope, send_with_headers, exc)
        finally:
            finish_request(scope, status, start)
            structlog.contextvars.reset_contextvars(**tokens)

    async def _problem(self, scope: Scope, send: Send, exc: Exception) -> None:
        from eduflow.api.problems import problem_response, unhandled_response

        request = Request(scope)
        if isinstance(exc, BodyTooLarge):
            response = problem_response(request, 413, str(exc.detail))
        else:
            response = unhandled_response(request, exc)

        async def no_body() -> Message:
            return {"type": "http.disconnect"}

        await response(scope, no_body, send)
