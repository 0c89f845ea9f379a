"""Courses routes: translate HTTP to ``services.courses`` and back."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from sqlmodel import Session
from starlette.responses import Response

from eduflow.api.deps import CurrentUser, ListingDep, OptionalUser, SessionDep, listing_body
from eduflow.api.etag import ETAG_RESPONSES, encode, json_response
from eduflow.api.idempotency import IdempotencyDep
from eduflow.api.paths import COURSES_PATH
from eduflow.api.problems import problem_responses
from eduflow.api.response_cache import cached_response
from eduflow.cache import responses as cache_policy
from eduflow.models.courses import CourseCreate, CoursePage, CoursePublic, CourseUpdate
from eduflow.services import courses
from eduflow.services.courses import DEFAULT_ORDERING, CourseFilters, CourseOrdering

router = APIRouter(tags=["courses"])
CourseId = Annotated[int, Path(ge=1, le=2**31 - 1, description="Course id.")]


@router.get(
    "/courses/",
    summary="List courses",
    response_model=CoursePage,
    responses={**ETAG_RESPONSES, **problem_responses(400, 401, 422)},
)
def list_courses(
    request: Request,
    actor: OptionalUser,
    page: ListingDep,
    search: Annotated[
        str | None, Query(max_length=200, description="Part of the title or description.")
    ] = None,
    ordering: Annotated[CourseOrdering, Query(description="Sort order.")] = DEFAULT_ORDERING,
    is_published: Annotated[bool | None, Query(description="Only (un)published.")] = None,
    owner: Annotated[str | None, Query(max_length=150, description="Owner's username.")] = None,
) -> Response:
    """Published courses for everyone; instructors also see their drafts, admins everything."""
    filters = CourseFilters(
        search=search, ordering=ordering, is_published=is_published, owner=owner
    )

    def read(session: Session) -> tuple[bytes, bytes]:
        found = courses.courses_page(session, actor, filters, page.request)
        return encode(CoursePage.model_validate(listing_body(request, page, found))), b""

    audience = cache_policy.course_list_audience(actor)
    plan = cache_policy.course_list_plan(request.scope, audience)
    return cached_response(request, plan, read, actor)


@router.post(
    "/courses/",
    summary="Create a course (instructor/admin)",
    status_code=201,
    response_model=CoursePublic,
    responses=problem_responses(400, 401, 403, 409, 413, 422, 503),
)
def create_course(
    idem: IdempotencyDep, body: CourseCreate, actor: CurrentUser, session: SessionDep
) -> Response:
    """Create a course owned by the caller. Honours ``Idempotency-Key``."""
    if idem.replay:
        return idem.replay
    course = courses.create_course(session, actor, body)
    return idem.respond(201, encode(course), {"Location": request_path(course.id)})


def request_path(course_id: int) -> str:
    """The canonical path of a course."""
    return f"{COURSES_PATH}{course_id}/"


@router.get(
    "/courses/{course_id}/",
    summary="Show a course",
    response_model=CoursePublic,
    responses={**ETAG_RESPONSES, **problem_responses(401, 404, 422)},
)
def get_course(request: Request, course_id: CourseId, actor: OptionalUser) -> Response:
    """One course (404 for a draft the caller may not see); sends an ETag."""

    def read(session: Session) -> tuple[bytes, bytes]:
        course, owner_id = courses.course_detail_and_owner(session, actor, course_id)
        return encode(course), cache_policy.course_meta(course.is_published, owner_id)

    plan = cache_policy.course_detail_plan(course_id)
    return cached_response(request, plan, read, actor)


_WRITE_ERRORS = problem_responses(400, 401, 403, 404, 413, 422)


@router.put(
    "/courses/{course_id}/",
    summary="Replace a course (owner/admin)",
    response_model=CoursePublic,
    responses=_WRITE_ERRORS,
)
def replace_course(
    course_id: CourseId, body: CourseCreate, actor: CurrentUser, session: SessionDep
) -> Response:
    """Replace every field; omitted optional fields take their defaults."""
    return json_response(courses.update_course(session, actor, course_id, body))


@router.patch(
    "/courses/{course_id}/",
    summary="Change a course (owner/admin)",
    response_model=CoursePublic,
    responses=_WRITE_ERRORS,
)
def update_course(
    course_id: CourseId, body: CourseUpdate, actor: CurrentUser, session: SessionDep
) -> Response:
    """Change the fields sent; capacity may not drop below the seats already taken."""
    return json_response(courses.update_course(session, actor, course_id, body))


@router.delete(
    "/courses/{course_id}/",
    summary="Delete a course with its lessons and enrollments (owner/admin)",
    status_code=204,
    response_class=Response,
    responses=problem_responses(401, 403, 404, 422),
)
def delete_course(course_id: CourseId, actor: CurrentUser, session: SessionDep) -> Response:
    """Delete the course. **Its lessons and all its enrollments are deleted with it.**"""
    courses.delete_course(session, actor, course_id)
    return Response(status_code=204)
