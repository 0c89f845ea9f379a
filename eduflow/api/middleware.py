"""One pure-ASGI middleware for what every routed request needs: its request context
(``eduflow.api.context``), the body limit and the rendering of unhandled exceptions.

Pure ASGI (not ``BaseHTTPMiddleware``) keeps the per-request cost to a few microseconds:
no extra task, no response re-streaming, headers appended to the start message in place.
It also renders unhandled exceptions itself: Starlette's ``Exception`` handler runs in
``ServerErrorMiddleware`` *outside* user middleware, where a 500 would lose its
``X-Request-ID``; here the 500 problem gets the id, the log line gets the traceback.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from eduflow.api.context import RequestContext
from eduflow.logging import get_logger

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` once a streamed body passes the limit (rendered as 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body exceeds {limit} bytes")


class RequestContextMiddleware:
    """The request context of routed requests, the 1 MiB body limit, unhandled errors."""

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
        context = RequestContext.of(scope)
        context.bind()
        content_length: int | None = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                content_length = int(value) if value.isdigit() else None
        status = 500
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), *context.starting(status)]
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
            context.finish(status)

    async def _problem(self, scope: Scope, send: Send, exc: Exception) -> None:
        from eduflow.api.problems import render_exception, send_problem

        await send_problem(send, render_exception(scope, exc))
