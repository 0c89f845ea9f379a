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
DOCS_STATIC = "/api/docs/static/"
# Only what the docs page loads; nothing else of the bundle directory is reachable.
_DOCS_ASSETS = {
    "swagger-ui-bundle.js": "application/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
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


@router.get("/api/docs/", include_in_schema=False)
def swagger_ui() -> HTMLResponse:
    """Swagger UI whose scripts and styles are served by EduFlow itself (works offline)."""
    from fastapi.openapi.docs import get_swagger_ui_html

    return get_swagger_ui_html(
        openapi_url="/api/schema/",
        title="EduFlow API",
        swagger_js_url=DOCS_STATIC + "swagger-ui-bundle.js",
        swagger_css_url=DOCS_STATIC + "swagger-ui.css",
        swagger_favicon_url=DOCS_STATIC + "favicon-32x32.png",
        swagger_ui_parameters={"persistAuthorization": True},
    )


def _assets_dir() -> Path:
    from swagger_ui_bundle import swagger_ui_path

    return Path(str(swagger_ui_path))


@router.get(DOCS_STATIC + "{name}", include_in_schema=False)
def swagger_asset(name: str) -> FileResponse:
    """One bundled Swagger UI asset."""
    media_type = _DOCS_ASSETS.get(name)
    if media_type is None:
        raise NotFound("No such asset")
    return FileResponse(
        _assets_dir() / name,
        media_type=media_type,
        headers={"Cache-Control": "public, max-age=86400"},
    )
