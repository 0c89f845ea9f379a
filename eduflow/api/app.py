"""create_app(): routers, error handlers, middleware and lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from eduflow import __version__

API_PREFIX = "/api/v1"


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
    # Everything loaded so far lives as long as the process: keep it out of the garbage
    # collector's full passes, which otherwise stall every request for tens of ms (p99).
    import gc

    gc.collect()
    gc.freeze()
    yield
    if embedded_jobs:
        from eduflow.jobs.embedded import stop_embedded_runner

        stop_embedded_runner()
    dispose_engines()


def create_app() -> FastAPI:
    """The EduFlow ASGI application."""
    from eduflow.api.problems import install_problem_handlers
    from eduflow.api.routes import auth, courses, enrollments, lessons, ops, users
    from eduflow.logging import configure_logging

    configure_logging()
    app = FastAPI(
        title="EduFlow API",
        version=__version__,
        description="Backend of an online-courses platform.",
        openapi_url="/api/schema/",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    install_problem_handlers(app)
    for module in (auth, users, courses, lessons, enrollments):
        app.include_router(module.router, prefix=API_PREFIX)
    app.include_router(ops.router)
    # Inside the request context: anonymous catalogue hits skip routing and dependencies.
    from eduflow.api.cached import CachedReads

    app.add_middleware(CachedReads)
    # Outermost user middleware: request id, timing, body limit, access log, metrics.
    from eduflow.api.middleware import RequestContextMiddleware

    app.add_middleware(RequestContextMiddleware)
    return app
