"""create_app(): routers, error handlers, middleware and lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from eduflow import __version__
from eduflow.api.context import RequestContext
from eduflow.deadline import end_request_deadline, start_request_deadline

if TYPE_CHECKING:
    from eduflow.api.cached import CachedReads
    from eduflow.api.cors import CORS

from eduflow.api.paths import API_PREFIX, ENROLL_PATH


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start and stop what lives as long as the server process."""
    from eduflow.config import get_settings
    from eduflow.db import dispose_engines

    # Embedded default (no Redis): jobs run in a thread of this process, fed by the outbox.
    embedded_jobs = get_settings().is_embedded
    if embedded_jobs:
        from eduflow.jobs.embedded import start_embedded_runner

        start_embedded_runner()
    _prepare_routes(app)
    # Everything loaded so far lives as long as the process: keep it out of the garbage
    # collector's full passes, which otherwise stall every request for tens of ms (p99).
    import gc

    gc.collect()
    gc.freeze()
    yield
    reads = getattr(app, "cached_reads", None)
    if reads is not None and reads.refresh is not None:
        reads.refresh.stop()
    from eduflow.api.context import publish

    publish()  # what cache hits tallied last
    if embedded_jobs:
        from eduflow.jobs.embedded import stop_embedded_runner

        stop_embedded_runner()
    dispose_engines()


def _prepare_routes(app: FastAPI) -> None:
    """Match a path that no route has against every route, once, before serving.

    FastAPI prepares an included router's routes (their parameter and body validators) the
    first time a request is matched against them: tens of milliseconds per process, which
    would otherwise fall on the first routed requests -- typically the rebuilds of cached
    entries right after a burst of writes."""
    scope = {"type": "http", "method": "GET", "path": "/\x00", "root_path": "", "headers": []}
    for route in app.router.routes:
        route.matches(dict(scope))


class EduFlowAPI(FastAPI):
    """FastAPI with the catalogue's cache hits and plain write POSTs (enrollments,
    progress batches) answered in front of it.

    Neither needs the framework (middleware stack, routing, dependencies): answering them
    here costs a fraction of a routed request. Everything else, misses included, goes
    through the full application unchanged.
    """

    cached_reads: CachedReads | None = None
    cors: CORS | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The outermost entry point of every request: CORS first, then the request's
        context (``eduflow.api.context``); a cache hit is answered from it at once, anything
        that may reach the database first starts its deadline (``eduflow.deadline``), then a
        plain write (enrollment, progress batch) is answered, or the application runs.
        Whatever must see every request (tracing) goes here too."""
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        # Begun here, the outermost point: the fast paths and the middleware share it.
        context = RequestContext(scope)
        if self.cors is not None:  # outermost: fast paths too
            if (admitted := await self.cors.admit(scope, receive, send)) is None:
                return  # a preflight, answered
            send = admitted
        fast = self.cached_reads
        # A hit reads the near cache or Redis, never the database: no deadline to keep.
        get = scope["method"] == "GET"
        if fast is not None and get and await fast.answer(scope, send, context):
            return
        deadline = start_request_deadline()
        try:
            if fast is not None:
                if scope["method"] == "GET":
                    try:
                        await super().__call__(scope, receive, send)
                    finally:
                        fast.rebuilds.done(scope)
                    return
                if fast.refresh is not None:
                    fast.refresh.note_write()
                if scope["method"] == "POST" and scope["path"].startswith(ENROLL_PATH):
                    from eduflow.api.fast_writes import answer_write

                    answered_with = await answer_write(fast, scope, receive, send)
                    if answered_with is None:
                        return
                    receive = answered_with
            await super().__call__(scope, receive, send)
        finally:
            end_request_deadline(deadline)


def create_app() -> EduFlowAPI:
    """The EduFlow ASGI application."""
    from eduflow.api.problems import install_problem_handlers
    from eduflow.api.routes import (
        account,
        audit,
        auth,
        certificates,
        courses,
        enrollments,
        lessons,
        ops,
        progress,
        users,
        waitlist,
    )
    from eduflow.config import get_settings
    from eduflow.logging import configure_logging

    configure_logging()
    docs = get_settings().api_docs
    app = EduFlowAPI(
        title="EduFlow API",
        version=__version__,
        description="Backend of an online-courses platform.",
        openapi_url="/api/schema/" if docs else None,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    install_problem_handlers(app)
    from eduflow.api import openapi

    openapi.install(app)
    routers = (auth, account, users, courses, lessons, enrollments, progress, certificates, audit)
    for module in (*routers, waitlist):
        app.include_router(module.router, prefix=API_PREFIX)
    app.include_router(ops.router)
    if docs:
        app.include_router(ops.docs_router)
    from eduflow.api.cached import CachedReads
    from eduflow.api.refresh import RefreshAhead

    app.cached_reads = CachedReads()
    app.cached_reads.refresh = RefreshAhead(app.cached_reads, app)
    from eduflow.api.cors import cors_policy

    app.cors = cors_policy()
    # Outermost user middleware: request id, timing, body limit, access log, metrics.
    from eduflow.api.middleware import RequestContextMiddleware

    app.add_middleware(RequestContextMiddleware)
    return app


def create_served_app() -> ASGIApp:
    """What ``eduflow serve`` runs: the application, inside a tracing span per request when
    the ``OTEL_*`` variables turn tracing on (``eduflow.tracing``)."""
    from eduflow.tracing import traced_asgi

    return traced_asgi(create_app())
