"""What a catalogue GET maps to in the response cache, decided from the request alone (and
the audience of the caller its token names): the same plans the routes build."""

from __future__ import annotations

from urllib.parse import parse_qsl

from eduflow.api.paths import COURSES_PATH, LESSONS_PATH
from eduflow.cache.responses import (
    Caller,
    Plan,
    Scope,
    course_detail_plan,
    course_list_audience,
    course_list_plan,
    lesson_list_audience,
    lesson_list_plan,
)


def _is_id(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 10


def fast_plan(scope: Scope, actor: Caller | None) -> tuple[Plan, dict[str, int]] | None:
    """The cache entry a catalogue GET by ``actor`` would be answered from, with the
    request's path parameters; None for any other request."""
    path: str = scope["path"]
    if path == COURSES_PATH:
        plan = course_list_plan(scope, course_list_audience(actor))
        return (plan, {}) if plan is not None else None
    if path == LESSONS_PATH:
        course: int | None = None
        for name, value in parse_qsl(scope["query_string"].decode("latin-1")):
            if name == "course":
                if not _is_id(value):
                    return None
                course = int(value)  # the last one wins, as in the route
        plan = lesson_list_plan(scope, lesson_list_audience(actor), course)
        return (plan, {}) if plan is not None else None
    if path.startswith(COURSES_PATH) and path.endswith("/"):
        course_id = path[len(COURSES_PATH) : -1]
        if _is_id(course_id):
            return course_detail_plan(int(course_id)), {"course_id": int(course_id)}
    return None
