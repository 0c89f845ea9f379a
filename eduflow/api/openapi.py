"""The OpenAPI document as the server behaves: readable operation ids, described tags,
authentication declared optional where anonymous calls are served, and parameters that
are never ``null``.

Applied to the generated document as a whole, so routes added later follow the same rules
without naming anything here: ids come from the path and method (``courses-list``,
``courses-get``, ``enrollments-confirm``), not from function names.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI

from eduflow.api.paths import API_PREFIX

BEARER = "HTTPBearer"
OPTIONAL_BEARER = "OptionalHTTPBearer"  # see api.deps.optional_bearer_scheme

# Described in the document's `tags` list (only those some operation uses are listed).
TAG_DESCRIPTIONS = {
    "auth": "Registration, login, tokens and the caller's own account.",
    "users": "Accounts and roles, for admins.",
    "courses": "The catalogue: anyone browses published courses; instructors manage their own.",
    "lessons": "Lessons of a course; content only for the owner, admins and enrolled students.",
    "enrollments": "Students join courses; paid courses stay pending until confirmed.",
    "progress": "Lesson progress of an enrollment and completion figures of a course.",
    "certificates": "Certificates of completed courses; verification is public.",
    "waitlist": "Places in line for full courses, and the seats offered from it.",
    "audit": "The trail of security-relevant changes, for admins.",
    "operations": "Liveness and readiness probes.",
}
_ITEM_VERBS = {"GET": "get", "PUT": "replace", "PATCH": "update", "DELETE": "delete"}
_COLLECTION_VERBS = {**_ITEM_VERBS, "GET": "list", "POST": "create"}
_SINGLETON_VERBS = {**_COLLECTION_VERBS, "GET": "get"}
_PARAM = re.compile(r"^\{[^}]+\}$")


def operation_id(path: str, method: str, paths: set[str], methods: int = 1) -> str:
    """``<resource words>-<verb>`` from the path and method (see the module docstring).

    A path ending in a parameter is an item (get/replace/update/delete); a path with
    items below it is a collection (list/create); any other path is an action, named by
    its words alone (``auth-login``), or, when it takes several methods, a singleton
    (``auth-me-get``, ``auth-me-update``).
    """
    segments = [s for s in path.removeprefix(API_PREFIX).split("/") if s]
    words = "-".join(s for s in segments if not _PARAM.match(s)) or "root"
    method = method.upper()
    if segments and _PARAM.match(segments[-1]):
        return f"{words}-{_ITEM_VERBS.get(method, method.lower())}"
    is_collection = any(
        p.startswith(path) and _PARAM.match(p[len(path) :].strip("/")) for p in paths
    )
    if is_collection:
        return f"{words}-{_COLLECTION_VERBS.get(method, method.lower())}"
    if methods > 1:
        return f"{words}-{_SINGLETON_VERBS.get(method, method.lower())}"
    return words


def _security(declared: list[dict[str, list[str]]] | None) -> list[dict[str, list[str]]] | None:
    """Bearer required where the route needs a caller, optional where anonymous is served."""
    names = {name for requirement in declared or () for name in requirement}
    if BEARER in names:
        return [{BEARER: []}]
    if OPTIONAL_BEARER in names:
        return [{BEARER: []}, {}]  # `{}`: anonymous is served too
    return declared


def _parameter_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A parameter's schema without FastAPI's ``anyOf [X, null]``: a query, header or path
    value is a string on the wire, never JSON ``null`` (left out, it takes its default)."""
    variants = [v for v in schema.get("anyOf", ()) if v != {"type": "null"}]
    if "anyOf" not in schema or len(variants) != 1:
        return schema
    rest = {k: v for k, v in schema.items() if k != "anyOf"}
    if rest.get("default", "") is None:
        del rest["default"]
    return {**variants[0], **rest}


def refine(document: dict[str, Any]) -> dict[str, Any]:
    """Rewrite ids, tags and security of ``document`` (FastAPI's output) in place."""
    paths = set(document.get("paths", {}))
    used_tags: list[str] = []
    seen: dict[str, str] = {}
    for path, operations in document.get("paths", {}).items():
        methods = [m for m in operations if m != "parameters"]
        for method in methods:
            op = operations[method]
            name = operation_id(path, method, paths, len(methods))
            if name in seen:  # never two operations with one id
                name = f"{name}-{method}"
            seen[name] = path
            op["operationId"] = name
            for parameter in op.get("parameters", []):
                if "schema" in parameter:
                    parameter["schema"] = _parameter_schema(parameter["schema"])
            if "security" in op:
                op["security"] = _security(op["security"])
            for tag in op.get("tags", []):
                if tag not in used_tags:
                    used_tags.append(tag)
    document["tags"] = [
        {"name": tag, "description": TAG_DESCRIPTIONS[tag]}
        if tag in TAG_DESCRIPTIONS
        else {"name": tag}
        for tag in used_tags
    ]
    schemes = document.get("components", {}).get("securitySchemes", {})
    optional_scheme = schemes.pop(OPTIONAL_BEARER, None)
    if optional_scheme is not None and BEARER not in schemes:
        schemes[BEARER] = optional_scheme
    return document


def install(app: FastAPI) -> None:
    """Make ``app.openapi()`` return the refined document (built once, as FastAPI does)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = refine(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def allowed_methods(app: FastAPI, path: str) -> str | None:
    """The ``Allow`` value of a 405 on ``path``: every method the document gives the path.

    Starlette's router lists only the methods of the first route that matched the path,
    and FastAPI makes one route per method.
    """
    for pattern, methods in _method_table(app):
        if pattern.fullmatch(path):
            return methods
    return None


def _method_table(app: FastAPI) -> list[tuple[re.Pattern[str], str]]:
    table: list[tuple[re.Pattern[str], str]] | None = getattr(app.state, "method_table", None)
    if table is None:
        table = []
        for template, item in app.openapi().get("paths", {}).items():
            pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
            methods = [m.upper() for m in item if m in _HTTP_METHODS]
            if "GET" in methods:
                methods.append("HEAD")
            table.append((re.compile(pattern), ", ".join(methods)))
        app.state.method_table = table
    return table


_HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
