"""One mapping from every failure to RFC 9457 problem details."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from eduflow.errors import PROBLEM_BASE, EduFlowError, Unavailable

PROBLEM_MEDIA_TYPE = "application/problem+json"

_HTTP_SLUGS = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Authentication required"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    409: ("conflict", "Conflict"),
    413: ("payload-too-large", "Payload too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    422: ("validation-error", "Validation error"),
    429: ("throttled", "Too many requests"),
    500: ("internal-error", "Internal server error"),
    503: ("service-unavailable", "Service unavailable"),
}


def request_id_of(request: Request) -> str | None:
    """The request id set by the middleware."""
    return getattr(request.state, "request_id", None)


def problem_response(
    request: Request,
    status: int,
    detail: str,
    *,
    slug: str | None = None,
    title: str | None = None,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """A problem+json response for ``status``."""
    default_slug, default_title = _HTTP_SLUGS.get(status, ("error", "Error"))
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + (slug or default_slug),
        "title": title or default_title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        "request_id": request_id_of(request),
    }
    if errors is not None:
        body["errors"] = errors
    return Response(
        orjson.dumps(body), status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers
    )


def eduflow_error_response(request: Request, exc: EduFlowError) -> Response:
    """Render an EduFlowError."""
    return Response(
        orjson.dumps(exc.to_problem(request.url.path, request_id_of(request))),
        status_code=exc.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=exc.headers or None,
    )


def _field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def validation_errors(exc: RequestValidationError) -> list[dict[str, str]]:
    """Pydantic errors as ``[{field, message}]``; input values are never echoed (secrets)."""
    out = []
    for err in exc.errors():
        message = str(err.get("msg", "invalid value"))
        if err.get("type") == "extra_forbidden":
            message = "unknown field"
        elif err.get("type") == "json_invalid":
            message = "malformed JSON"
        out.append({"field": _field_name(err.get("loc", ())), "message": message})
    return out


def install_problem_handlers(app: FastAPI) -> None:
    """Replace FastAPI/Starlette's default error bodies with problem details."""

    async def on_eduflow_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, EduFlowError)
        return eduflow_error_response(request, exc)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = validation_errors(exc)
        malformed = any(e["message"] == "malformed JSON" for e in errors)
        return problem_response(
            request,
            400 if malformed else 422,
            "The request body is not valid JSON" if malformed else "The request is invalid",
            errors=errors,
        )

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else "Error"
        return problem_response(
            request, exc.status_code, detail, headers=dict(exc.headers or {}) or None
        )

    async def on_unhandled(request: Request, exc: Exception) -> Response:
        from eduflow.db import is_connection_error
        from eduflow.logging import get_logger

        if is_connection_error(exc):
            return eduflow_error_response(
                request, Unavailable("The database is unavailable; retry shortly")
            )
        get_logger("eduflow.error").error(
            "unhandled_exception", path=request.url.path, exc_info=exc
        )
        return problem_response(request, 500, "An unexpected error occurred")

    app.add_exception_handler(EduFlowError, on_eduflow_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unhandled)
