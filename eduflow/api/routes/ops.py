"""Operational routes: health, readiness, metrics and the offline API docs."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse
from starlette.responses import Response

from eduflow.api.problems import problem_responses
from eduflow.errors import NotFound, Unavailable

router = APIRouter(tags=["operations"])

READY_WITHIN = 0.8  # seconds /readyz waits for the database at most
SCHEMA_URL = "/api/schema/"

DOCS_STATIC = "/api/docs/static/"
# Only what the docs pages load; nothing else of the package directory is reachable.
_DOCS_ASSETS = {
    "swagger-ui-bundle.js": "application/javascript",
    "swagger-ui.css": "text/css",
    "redoc.standalone.js": "application/javascript",
    "favicon.png": "image/png",
}


@router.get("/healthz", summary="Liveness")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness", responses=problem_responses(503))
def readyz() -> dict[str, str]:
    """200 only when the database (and Redis, when configured) answer; 503 names what is down.

    Answered within ``READY_WITHIN`` seconds whatever the servers do: the database is
    probed in a thread of its own while Redis is pinged (its client has a short timeout).
    """
    import time

    from eduflow.cache.stores import get_redis
    from eduflow.db import answered, start_probe

    begun = time.monotonic()
    probe = start_probe()
    down = []
    client = get_redis()
    if client is not None:
        try:
            client.ping()
        except Exception:
            down.append("redis")
    if not answered(probe, READY_WITHIN - (time.monotonic() - begun)):
        down.insert(0, "database")
    if down:
        raise Unavailable(f"Not ready: {' and '.join(down)} unavailable")
    return {"status": "ready"}


@router.get("/metrics", include_in_schema=False)
def metrics() -> Response:
    """Prometheus text exposition."""
    from eduflow.metrics import render

    body, media_type = render()
    return Response(body, media_type=media_type)


# The API docs: included only when EDUFLOW_API_DOCS is on (the default), see create_app().
docs_router = APIRouter(tags=["operations"])


@docs_router.get("/api/docs/", include_in_schema=False)
def swagger_ui() -> HTMLResponse:
    """Swagger UI 5 (reads OpenAPI 3.1) with its scripts and styles served by EduFlow itself."""
    from fastapi.openapi.docs import get_swagger_ui_html

    return get_swagger_ui_html(
        openapi_url=SCHEMA_URL,
        title="EduFlow API",
        swagger_js_url=DOCS_STATIC + "swagger-ui-bundle.js",
        swagger_css_url=DOCS_STATIC + "swagger-ui.css",
        swagger_favicon_url=DOCS_STATIC + "favicon.png",
        swagger_ui_parameters={"persistAuthorization": True, "displayOperationId": True},
    )


@docs_router.get("/api/redoc/", include_in_schema=False)
def redoc() -> HTMLResponse:
    """ReDoc 2, served the same way (no CDN, no web fonts from outside)."""
    from fastapi.openapi.docs import get_redoc_html

    return get_redoc_html(
        openapi_url=SCHEMA_URL,
        title="EduFlow API",
        redoc_js_url=DOCS_STATIC + "redoc.standalone.js",
        redoc_favicon_url=DOCS_STATIC + "favicon.png",
        with_google_fonts=False,
    )


def _assets_dir() -> Path:
    # fastapi-offline ships the Swagger UI and ReDoc distributions as package data.
    import fastapi_offline

    return Path(fastapi_offline.__file__).parent / "static"


@docs_router.get(DOCS_STATIC + "{name}", include_in_schema=False)
def swagger_asset(name: str) -> FileResponse:
    """One bundled documentation asset."""
    media_type = _DOCS_ASSETS.get(name)
    if media_type is None:
        raise NotFound("No such asset")
    return FileResponse(
        _assets_dir() / name,
        media_type=media_type,
        headers={"Cache-Control": "public, max-age=86400"},
    )
