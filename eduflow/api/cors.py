"""CORS for the origins of ``EDUFLOW_CORS_ORIGINS``, applied at the outermost ASGI entry.

It sits in front of everything, fast paths included, so a cached catalogue read or a
plainly answered enrollment gets the same headers as a routed request. Starlette's
``CORSMiddleware`` decides what the headers say (preflight rules, ``Vary``); this module
only makes sure that a request without an ``Origin`` costs one header scan, and that an
origin not configured gets no CORS header at all (its preflight goes on to the
application, which answers 405 as it would without CORS).
"""

from __future__ import annotations

import functools

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from eduflow.api.context import RequestContext

# What a browser script may read of a response besides the CORS-safelisted headers.
EXPOSED_HEADERS = (
    "ETag",
    "Location",
    "Retry-After",
    "X-Request-ID",
    "X-Response-Time-ms",
)
PREFLIGHT = "<preflight>"  # the route label of answered preflights (metrics, spans)
# What a browser script may send besides the CORS-safelisted headers.
ALLOWED_HEADERS = (
    "Authorization",
    "Content-Type",
    "Idempotency-Key",
    "If-None-Match",
    "X-Request-ID",
)


async def _no_app(scope: Scope, receive: Receive, send: Send) -> None:  # pragma: no cover
    raise RuntimeError("CORS is applied by EduFlowAPI.__call__, not as a middleware")


class CORS:
    """The CORS policy of one application (``None`` in ``EduFlowAPI.cors`` when off)."""

    def __init__(self, origins: list[str]) -> None:
        self.policy = CORSMiddleware(
            _no_app,
            allow_origins=origins,
            allow_methods=("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"),
            allow_headers=ALLOWED_HEADERS,
            expose_headers=EXPOSED_HEADERS,
            max_age=600,
        )

    async def admit(self, scope: Scope, receive: Receive, send: Send) -> Send | None:
        """The ``send`` to answer with, or ``None`` when the preflight is answered here."""
        origin = None
        for name, value in scope["headers"]:
            if name == b"origin":
                origin = value.decode("latin-1")
                break
        if origin is None:
            return send
        if not self.policy.is_allowed_origin(origin):
            return functools.partial(_vary_origin, send=send)
        headers = Headers(scope=scope)
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            response = self.policy.preflight_response(request_headers=headers)
            await _answer_preflight(response, scope, receive, send)
            return None
        return functools.partial(self.policy.send, send=send, request_headers=headers)


async def _answer_preflight(response: Response, scope: Scope, receive: Receive, send: Send) -> None:
    """A preflight is a request like any other: its id and timing headers, its access line
    and its count in the metrics (under one bounded route label)."""
    context = RequestContext.of(scope)
    status = 200

    async def sending(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            headers = [*message.get("headers", ()), *context.starting(status, PREFLIGHT)]
            message = {**message, "headers": headers}
        await send(message)

    await response(scope, receive, sending)
    context.finish(status, route=PREFLIGHT)


async def _vary_origin(message: Message, send: Send) -> None:
    # Shared caches must not hand this answer to an allowed origin, nor the reverse.
    if message["type"] == "http.response.start":
        message["headers"] = [*message.get("headers", ()), (b"vary", b"Origin")]
    await send(message)


def cors_policy() -> CORS | None:
    """The policy of ``EDUFLOW_CORS_ORIGINS``, or ``None`` (no CORS headers) when empty."""
    from eduflow.config import get_settings

    origins = get_settings().cors_origin_list
    return CORS(origins) if origins else None
