"""Lessons routes: translate HTTP to ``services.lessons`` and back."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from sqlmodel import Session
from starlette.responses import Response

from eduflow.api.deps import CurrentUser, OptionalUser, PageDep, SessionDep, page_body
from eduflow.api.etag import ETAG_RESPONSES, encode, etag_response, json_response
from eduflow.api.idempotency import IdempotencyDep
from eduflow.api.paths import LESSONS_PATH
from eduflow.api.problems import problem_responses
from eduflow.api.response_cache import cached_response
from eduflow.cache import responses as cache_policy
from eduflow.models.lessons import LessonCreate, LessonPage, LessonPublic, LessonUpdate
from eduflow.services import lessons

router = APIRouter(tags=["lessons"])
LessonId = Annotated[int, Path(ge=1, le=2**31 - 1, description="Lesson id.")]


@router.get(
    "/lessons/",
    summary="List lessons",
    response_model=LessonPage,
    responses={**ETAG_RESPONSES, **problem_responses(401, 404, 422)},
)
def list_lessons(
    request: Request,
    actor: OptionalUser,
    page: PageDep,
    course: Annotated[
        int | None, Query(ge=1, le=2**31 - 1, description="Only this course's lessons.")
    ] = None,
) -> Response:
    """Lessons of the visible courses by ``order_index``; ``content`` is null unless the
    caller owns the course, is an admin or is actively enrolled."""

    def read(session: Session) -> tuple[bytes, bytes]:
        count, rows = lessons.list_lessons(
            session, actor, course, offset=page.offset, limit=page.page_size
        )
        return encode(LessonPage.model_validate(page_body(request, page, count, rows))), b""

    audience = cache_policy.lesson_list_audience(actor)
    plan = cache_policy.lesson_list_plan(request.scope, audience, course)
    return cached_response(request, plan, read, actor)


@router.post(
    "/lessons/",
    summary="Add a lesson (course owner/admin)",
    status_code=201,
    response_model=LessonPublic,
    responses=problem_responses(400, 401, 403, 404, 409, 413, 422, 503),
)
def create_lesson(
    idem: IdempotencyDep, body: LessonCreate, actor: CurrentUser, session: SessionDep
) -> Response:
    """Add a lesson; without ``order_index`` it goes last. Honours ``Idempotency-Key``."""
    if idem.replay:
        return idem.replay
    lesson = lessons.create_lesson(session, actor, body)
    return idem.respond(201, encode(lesson), {"Location": f"{LESSONS_PATH}{lesson.id}/"})


@router.get(
    "/lessons/{lesson_id}/",
    summary="Show a lesson",
    response_model=LessonPublic,
    responses={**ETAG_RESPONSES, **problem_responses(401, 404, 422)},
)
def get_lesson(
    request: Request, lesson_id: LessonId, actor: OptionalUser, session: SessionDep
) -> Response:
    """One lesson of a visible course; sends an ETag."""
    return etag_response(request, lessons.lesson_detail(session, actor, lesson_id))


_WRITE_ERRORS = problem_responses(400, 401, 403, 404, 413, 422)


@router.put(
    "/lessons/{lesson_id}/",
    summary="Replace a lesson (course owner/admin)",
    response_model=LessonPublic,
    responses=problem_responses(400, 401, 403, 404, 409, 413, 422),
)
def replace_lesson(
    lesson_id: LessonId, body: LessonCreate, actor: CurrentUser, session: SessionDep
) -> Response:
    """Replace the lesson's fields; ``course`` must stay the same (409 otherwise)."""
    return json_response(lessons.update_lesson(session, actor, lesson_id, body))


@router.patch(
    "/lessons/{lesson_id}/",
    summary="Change a lesson (course owner/admin)",
    response_model=LessonPublic,
    responses=_WRITE_ERRORS,
)
def update_lesson(
    lesson_id: LessonId, body: LessonUpdate, actor: CurrentUser, session: SessionDep
) -> Response:
    """Change the fields sent."""
    return json_response(lessons.update_lesson(session, actor, lesson_id, body))


@router.delete(
    "/lessons/{lesson_id}/",
    summary="Delete a lesson (course owner/admin)",
    status_code=204,
    response_class=Response,
    responses=problem_responses(401, 403, 404, 422),
)
def delete_lesson(lesson_id: LessonId, actor: CurrentUser, session: SessionDep) -> Response:
    """Delete the lesson."""
    lessons.delete_lesson(session, actor, lesson_id)
    return Response(status_code=204)
