"""The fast paths stand in for the routes they answer: a dependency or middleware added to
one of those routes, unknown to the fast paths, fails here (teach the fast path, then add
it to ``eduflow.api.paths.FAST_PATHED``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi.routing import APIRoute

from eduflow.api.paths import FAST_PATHED, KNOWN_MIDDLEWARE


def _routes(app: Any) -> Iterator[tuple[str, Any, list[Any]]]:
    """(full path, route, router-level dependencies) of every API route."""
    for route in app.routes:
        context = getattr(route, "include_context", None)
        if context is None:
            if isinstance(route, APIRoute):
                yield route.path, route, list(route.dependencies)
            continue
        router = context.included_router
        shared = [*context.dependencies, *router.dependencies]
        for sub in router.routes:
            if isinstance(sub, APIRoute):
                yield context.prefix + sub.path, sub, shared


def _name(call: Any) -> str:
    return getattr(call, "__name__", None) or type(call).__name__


def _dependencies(dependant: Any, into: set[str]) -> set[str]:
    for sub in dependant.dependencies:
        into.add(_name(sub.call))
        _dependencies(sub, into)
    return into


def _unknown_to_fast_paths(app: Any) -> list[str]:
    """What the fast-pathed routes run that ``FAST_PATHED`` and ``KNOWN_MIDDLEWARE`` do
    not name (and fast-pathed routes that are gone)."""
    found: dict[tuple[str, str], set[str]] = {}
    for path, route, shared in _routes(app):
        for method in route.methods:
            if (method, path) in FAST_PATHED:
                names = found.setdefault((method, path), set())
                _dependencies(route.dependant, names)
                names |= {_name(d.dependency) for d in [*shared, *route.dependencies]}
    problems = [f"{m} {p}: no such route" for m, p in set(FAST_PATHED) - set(found)]
    for (method, path), names in sorted(found.items()):
        problems += [f"{method} {path}: {n}" for n in sorted(names ^ FAST_PATHED[(method, path)])]
    middleware = tuple(m.cls.__name__ for m in app.user_middleware)
    if middleware != KNOWN_MIDDLEWARE:
        problems.append(f"middleware {middleware}")
    return problems


def test_fast_pathed_routes_run_only_what_the_fast_paths_know(app: Any) -> None:
    assert _unknown_to_fast_paths(app) == []


def test_the_guard_sees_an_added_dependency_or_middleware() -> None:
    from fastapi import Depends
    from starlette.middleware.gzip import GZipMiddleware

    from eduflow.api.app import create_app
    from eduflow.api.paths import API_PREFIX
    from eduflow.api.routes import courses

    def audit_reads() -> None:
        """A dependency the fast path would skip."""

    app = create_app()
    app.include_router(courses.router, prefix=API_PREFIX, dependencies=[Depends(audit_reads)])
    assert "GET /api/v1/courses/: audit_reads" in _unknown_to_fast_paths(app)
    other = create_app()
    other.add_middleware(GZipMiddleware)
    assert _unknown_to_fast_paths(other) == [
        "middleware ('GZipMiddleware', 'RequestContextMiddleware')"
    ]
