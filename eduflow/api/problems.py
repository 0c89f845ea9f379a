"""One mapping from every failure to RFC 9457 problem details."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import Scope, Send

from eduflow.api.context import request_id_of
from eduflow.errors import PROBLEM_BASE, EduFlowError, Unavailable

PROBLEM_MEDIA_TYPE = "application/problem+json"
_CONTENT_TYPE = (b"content-type", PROBLEM_MEDIA_TYPE.encode())


class FieldError(BaseModel):
    """One invalid field."""

    field: str
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details, as every error response of EduFlow carries them."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": PROBLEM_BASE + "validation-error",
                    "title": "Validation error",
                    "status": 422,
                    "detail": "The request is invalid",
                    "instance": "/api/v1/auth/register/",
                    "request_id": "5f0c6c1e9a7b4c7e8d2f0a1b2c3d4e5f",
                    "errors": [{"field": "password", "message": "must not be all digits"}],
                }
            ]
        }
    )

    type: str
    title: str
    status: int
    detail: str
    instance: str
    request_id: str | None
    errors: list[FieldError] | None = None


_RESPONSE_TEXT = {
    400: "Malformed request (e.g. invalid JSON)",
    401: "Missing, invalid, expired or revoked credentials",
    403: "Authenticated but not allowed",
    404: "Not found (or not visible to the caller)",
    409: "Conflicts with the current state",
    413: "Request body over the limit",
    422: "Validation error",
    429: "Too many attempts (see Retry-After)",
    503: "A backing service is unavailable",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries documenting problem+json answers for ``statuses``."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        entry: dict[str, Any] = {
            "description": _RESPONSE_TEXT.get(status, "Error"),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        if status == 401:
            entry["headers"] = {
                "WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer"}
            }
        if status == 429:
            entry["headers"] = {
                "Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}
            }
        out[status] = entry
    return out


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


@dataclass(frozen=True, slots=True)
class Rendered:
    """A problem answer: status, raw headers (content type first, no length) and body."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


def problem_body(
    status: int,
    detail: str,
    instance: str,
    request_id: str | None,
    *,
    type_uri: str | None = None,
    title: str | None = None,
    errors: list[dict[str, str]] | None = None,
    extensions: dict[str, Any] | None = None,
) -> bytes:
    """The RFC 9457 body: the only place a problem's JSON is built (``extensions``: extra
    members such as a link to act on, never overriding the standard ones)."""
    default_slug, default_title = _HTTP_SLUGS.get(status, ("error", "Error"))
    body: dict[str, Any] = {
        "type": type_uri or PROBLEM_BASE + default_slug,
        "title": title or default_title,
        "status": status,
        "detail": detail,
        "instance": instance,
        "request_id": request_id,
    }
    if errors is not None:
        body["errors"] = errors
    for name, value in (extensions or {}).items():
        body.setdefault(name, value)
    return orjson.dumps(body)


_STANDARD_MEMBERS = frozenset(("type", "title", "status", "detail", "instance", "request_id"))


def renamed_problem(body: bytes, request_id: str | None) -> bytes:
    """A stored problem body answering another request (an idempotent replay): the same
    problem, naming the request it answers."""
    stored = orjson.loads(body)
    return problem_body(
        stored["status"],
        stored["detail"],
        stored["instance"],
        request_id,
        type_uri=stored["type"],
        title=stored["title"],
        errors=stored.get("errors"),
        extensions={k: v for k, v in stored.items() if k not in _STANDARD_MEMBERS | {"errors"}},
    )


def _raw(headers: dict[str, str] | None) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]


def render_problem(
    scope: Scope,
    status: int,
    detail: str,
    *,
    slug: str | None = None,
    title: str | None = None,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> Rendered:
    """The problem answer for ``status`` to the request of ``scope``."""
    type_uri = PROBLEM_BASE + slug if slug else None
    body = problem_body(
        status,
        detail,
        scope["path"],
        request_id_of(scope),
        type_uri=type_uri,
        title=title,
        errors=errors,
    )
    return Rendered(status, [_CONTENT_TYPE, *_raw(headers)], body)


def render_error(scope: Scope, exc: EduFlowError) -> Rendered:
    """The problem answer of an ``EduFlowError``."""
    body = problem_body(
        exc.status,
        exc.detail,
        scope["path"],
        request_id_of(scope),
        type_uri=exc.type_uri,
        title=exc.problem_title,
        errors=exc.errors,
        extensions=exc.extensions,
    )
    return Rendered(exc.status, [_CONTENT_TYPE, *_raw(exc.headers)], body)


def render_exception(scope: Scope, exc: BaseException) -> Rendered:
    """The problem answer of any exception: an ``EduFlowError`` or HTTP error as itself, a
    lost database as 503, a lost race as a retryable 503, unstorable input as 422, anything
    else a generic 500 (logged with its traceback, never shown)."""
    from eduflow.db import is_connection_error, is_transient_conflict
    from eduflow.logging import get_logger

    path = scope["path"]
    if isinstance(exc, EduFlowError):
        return render_error(scope, exc)
    if isinstance(exc, StarletteHTTPException):
        detail = exc.detail if isinstance(exc.detail, str) else "Error"
        return render_problem(scope, exc.status_code, detail, headers=dict(exc.headers or {}))
    if isinstance(exc, Exception) and is_connection_error(exc):
        return render_error(scope, Unavailable("The database is unavailable; retry shortly"))
    if isinstance(exc, Exception) and is_transient_conflict(exc):  # e.g. a deadlock victim
        get_logger("eduflow.error").warning(
            "transient_conflict", path=path, error=type(exc).__name__
        )
        return render_error(
            scope,
            Unavailable(
                "A concurrent change got in the way; retry shortly",
                headers={"Retry-After": "1"},
            ),
        )
    if isinstance(exc, Exception) and _is_unstorable_input(exc):
        # e.g. a NUL character or an out-of-range number that passed schema validation:
        # the client's input, so a 422 rather than a 500.
        get_logger("eduflow.error").warning("unstorable_input", path=path)
        return render_problem(
            scope, 422, "The request contains a value that cannot be stored", errors=[]
        )
    get_logger("eduflow.error").error("unhandled_exception", path=path, exc_info=exc)
    return render_problem(scope, 500, "An unexpected error occurred")


def as_response(problem: Rendered) -> Response:
    """``problem`` as a Starlette response (exception handlers, dependencies)."""
    response = Response(problem.body, status_code=problem.status)
    response.raw_headers = [
        *problem.headers,
        (b"content-length", b"%d" % len(problem.body)),
    ]
    return response


async def send_problem(
    send: Send, problem: Rendered, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    """Send ``problem`` as the whole response, on a raw ASGI ``send``."""
    headers = [*problem.headers, (b"content-length", b"%d" % len(problem.body)), *(extra or ())]
    await send({"type": "http.response.start", "status": problem.status, "headers": headers})
    await send({"type": "http.response.body", "body": problem.body})


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
    return as_response(
        render_problem(
            request.scope, status, detail, slug=slug, title=title, errors=errors, headers=headers
        )
    )


def eduflow_error_response(request: Request, exc: EduFlowError) -> Response:
    """Render an EduFlowError."""
    return as_response(render_error(request.scope, exc))


def unhandled_response(request: Request, exc: Exception) -> Response:
    """Render any exception (see ``render_exception``)."""
    return as_response(render_exception(request.scope, exc))


def _is_unstorable_input(exc: Exception) -> bool:
    from sqlalchemy.exc import DataError

    return isinstance(exc, DataError) or (
        isinstance(exc, ValueError) and "NUL" in str(exc)  # SQLite/psycopg string checks
    )


def _field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def validation_errors(exc: RequestValidationError) -> list[dict[str, str]]:
    """Pydantic errors as ``[{field, message}]``; input values are never echoed (secrets)."""
    out = []
    for err in exc.errors():
        message = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        if err.get("type") == "extra_forbidden":
            message = "unknown field"
        elif err.get("type") == "json_invalid":  # its loc holds a byte offset, not a field
            out.append({"field": "body", "message": "malformed JSON"})
            continue
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
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # every method of the path, not the first route's only
            from eduflow.api.openapi import allowed_methods

            headers["Allow"] = allowed_methods(app, request.url.path) or headers.get("Allow", "")
        return problem_response(request, exc.status_code, detail, headers=headers or None)

    async def on_unhandled(request: Request, exc: Exception) -> Response:
        return unhandled_response(request, exc)

    app.add_exception_handler(EduFlowError, on_eduflow_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unhandled)
    install_problem_openapi(app)


def install_problem_openapi(app: FastAPI) -> None:
    """Document problem details in the OpenAPI schema instead of FastAPI's default 422 body."""
    from fastapi.openapi.utils import get_openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
            tags=app.openapi_tags,
            servers=app.servers,
        )
        components = schema.setdefault("components", {})
        schemas = components.setdefault("schemas", {})
        problem_schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, sub in problem_schema.pop("$defs", {}).items():
            schemas.setdefault(name, sub)
        schemas["Problem"] = problem_schema
        problem_422 = problem_responses(422)[422]
        for path_item in schema.get("paths", {}).values():
            for operation in path_item.values():
                if not isinstance(operation, dict) or "responses" not in operation:
                    continue
                responses = operation["responses"]
                old = responses.get("422", {}).get("content", {}).get("application/json")
                if old is not None:
                    responses["422"] = problem_422
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
