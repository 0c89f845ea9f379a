"""Waitlist routes: translate HTTP to ``services.waitlist`` and back."""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response

from eduflow.api.deps import CurrentUser, PageDep, SessionDep, page_body
from eduflow.api.etag import encode, json_response
from eduflow.api.problems import problem_responses
from eduflow.api.routes.enrollments import seat_writes_limiter
from eduflow.models.enrollments import EnrollmentPublic
from eduflow.models.waitlist import (
    WaitlistEntryPublic,
    WaitlistJoin,
    WaitlistPage,
    WaitlistStatus,
)
from eduflow.services import waitlist

router = APIRouter(tags=["waitlist"])
EntryId = Annotated[int, Path(ge=1, le=2**31 - 1, description="Waitlist entry id.")]


@router.post(
    "/waitlist/",
    summary="Join the waitlist of a full course (students)",
    status_code=201,
    response_model=WaitlistEntryPublic,
    responses=problem_responses(400, 401, 403, 404, 409, 413, 422, 503),
)
async def join_waitlist(body: WaitlistJoin, actor: CurrentUser) -> Response:
    """Only while the course is full (409 ``course-not-full``: enroll instead); one open entry
    per student and course (409 ``already-on-waitlist``); enrolled students: 409."""
    entry = await anyio.to_thread.run_sync(
        waitlist.join, actor, body.course, limiter=seat_writes_limiter()
    )
    return Response(
        encode(entry),
        status_code=201,
        media_type="application/json",
        headers={"Location": f"/api/v1/waitlist/{entry.id}/"},
    )


@router.get(
    "/waitlist/",
    summary="List waitlist entries",
    response_model=WaitlistPage,
    responses=problem_responses(401, 422),
)
def list_waitlist(
    request: Request,
    actor: CurrentUser,
    session: SessionDep,
    page: PageDep,
    course: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="Course id.")] = None,
    status: Annotated[WaitlistStatus | None, Query(description="Only this status.")] = None,
) -> Response:
    """Students: their own; instructors: those of their courses; admins: all (join order)."""
    count, rows = waitlist.list_waitlist(
        session, actor, course_id=course, status=status, offset=page.offset, limit=page.page_size
    )
    return json_response(WaitlistPage.model_validate(page_body(request, page, count, rows)))


@router.get(
    "/waitlist/{entry_id}/",
    summary="Show a waitlist entry",
    response_model=WaitlistEntryPublic,
    responses=problem_responses(401, 404, 422),
)
def get_entry(entry_id: EntryId, actor: CurrentUser, session: SessionDep) -> Response:
    """For its student, the course owner and admins (404 for anyone else)."""
    return json_response(waitlist.get_entry(session, actor, entry_id))


@router.delete(
    "/waitlist/{entry_id}/",
    summary="Leave the waitlist (the student or an admin)",
    status_code=204,
    response_class=Response,
    responses=problem_responses(401, 403, 404, 409, 422),
)
def leave_waitlist(entry_id: EntryId, actor: CurrentUser, session: SessionDep) -> Response:
    """An open entry (waiting or offered) ends; an offered seat goes to the next in line."""
    waitlist.leave_waitlist(session, actor, entry_id)
    return Response(status_code=204)


@router.post(
    "/waitlist/{entry_id}/accept/",
    summary="Accept a waitlist offer (the student)",
    status_code=201,
    response_model=EnrollmentPublic,
    responses=problem_responses(401, 403, 404, 409, 422, 503),
)
async def accept_offer(entry_id: EntryId, actor: CurrentUser) -> Response:
    """Before the deadline: the enrollment (active if free, pending if paid) on the held
    seat. After it: 409 ``offer-expired`` and the seat goes to the next in line."""
    enrollment = await anyio.to_thread.run_sync(
        waitlist.accept_offer, actor, entry_id, limiter=seat_writes_limiter()
    )
    return Response(
        encode(enrollment),
        status_code=201,
        media_type="application/json",
        headers={"Location": f"/api/v1/enrollments/{enrollment.id}/"},
    )


@router.post(
    "/waitlist/{entry_id}/decline/",
    summary="Decline a waitlist offer (the student)",
    status_code=204,
    response_class=Response,
    responses=problem_responses(401, 403, 404, 409, 422),
)
def decline_offer(entry_id: EntryId, actor: CurrentUser, session: SessionDep) -> Response:
    """The offered seat goes to the next in line."""
    waitlist.decline_offer(session, actor, entry_id)
    return Response(status_code=204)
