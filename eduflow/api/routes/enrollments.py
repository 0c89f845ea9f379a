"""Enrollments routes: translate HTTP to ``services.enrollments`` and back."""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response

from eduflow import db_routing
from eduflow.api.deps import CurrentUser, ListingDep, SessionDep, listing_body
from eduflow.api.etag import encode, json_response
from eduflow.api.idempotency import IdempotencyDep
from eduflow.api.paths import ENROLL_PATH
from eduflow.api.problems import problem_responses
from eduflow.api.threads import writes_limiter
from eduflow.config import get_settings
from eduflow.models.enrollments import (
    EnrollmentCreate,
    EnrollmentPage,
    EnrollmentPublic,
    EnrollmentStatus,
)
from eduflow.services import enrollments
from eduflow.services.permissions import Principal

router = APIRouter(tags=["enrollments"])
EnrollmentId = Annotated[int, Path(ge=1, le=2**31 - 1, description="Enrollment id.")]


@router.post(
    "/enrollments/",
    summary="Enroll in a course (students)",
    status_code=201,
    response_model=EnrollmentPublic,
    responses=problem_responses(400, 401, 403, 404, 409, 413, 422, 503),
)
async def enroll(idem: IdempotencyDep, body: EnrollmentCreate) -> Response:
    """Free course: ``active``; paid course: ``pending`` until confirmed. 409
    ``already-enrolled`` for a second enrollment, 409 ``course-full`` when no seat is left.
    Honours ``Idempotency-Key``."""
    # The caller comes with ``idem`` (which requires it): a second ``CurrentUser`` here
    # would have FastAPI walk the authentication's dependencies again on every request.
    if idem.replay:
        return idem.replay
    enrollment = await enroll_as(idem.actor, body.course)
    return idem.respond(201, encode(enrollment), {"Location": f"{ENROLL_PATH}{enrollment.id}/"})


async def enroll_as(actor: Principal, course_id: int) -> EnrollmentPublic:
    """Enroll ``actor`` in ``course_id`` off the event loop, in the enrollments' own threads:
    the route and the write fast path (``eduflow.api.fast_writes``) both come here."""
    db_routing.act_as(actor.id)
    return await anyio.to_thread.run_sync(
        enrollments.enroll, actor, course_id, limiter=seat_writes_limiter()
    )


def seat_writes_limiter() -> anyio.CapacityLimiter:
    """Enrollments (and the other writes that queue on a course's row lock: joining its
    waitlist, accepting an offer) run in ``EDUFLOW_ENROLL_THREADS`` threads of their own
    (``eduflow.api.threads``): when a course is rushed, its row lock is held from the seat
    statement to the commit, and every extra thread competing for the interpreter lock
    stretches that window."""
    return writes_limiter("seats", get_settings().enroll_threads)


@router.get(
    "/enrollments/",
    summary="List enrollments",
    response_model=EnrollmentPage,
    responses=problem_responses(400, 401, 422),
)
def list_enrollments(
    request: Request,
    actor: CurrentUser,
    session: SessionDep,
    page: ListingDep,
    course: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="Course id.")] = None,
    status: Annotated[EnrollmentStatus | None, Query(description="Only this status.")] = None,
) -> Response:
    """Students: their own; instructors: those in their courses; admins: all."""
    found = enrollments.enrollments_page(
        session, actor, course_id=course, status=status, request=page.request
    )
    body = EnrollmentPage.model_validate(listing_body(request, page, found))
    return json_response(body)


@router.get(
    "/enrollments/{enrollment_id}/",
    summary="Show an enrollment",
    response_model=EnrollmentPublic,
    responses=problem_responses(401, 404, 422),
)
def get_enrollment(
    enrollment_id: EnrollmentId, actor: CurrentUser, session: SessionDep
) -> Response:
    """For its student, the course owner and admins (404 for anyone else)."""
    enrollment = enrollments.get_enrollment(session, actor, enrollment_id)
    return json_response(enrollment)


@router.delete(
    "/enrollments/{enrollment_id}/",
    summary="Unenroll (the student or an admin)",
    status_code=204,
    response_class=Response,
    responses=problem_responses(401, 403, 404, 422),
)
def cancel_enrollment(
    enrollment_id: EnrollmentId, actor: CurrentUser, session: SessionDep
) -> Response:
    """Remove the enrollment and free its seat; the student may enroll again later."""
    enrollments.cancel_enrollment(session, actor, enrollment_id)
    return Response(status_code=204)


@router.post(
    "/enrollments/{enrollment_id}/confirm/",
    summary="Confirm a pending enrollment (course owner/admin)",
    response_model=EnrollmentPublic,
    responses=problem_responses(401, 403, 404, 409, 422),
)
def confirm_enrollment(
    enrollment_id: EnrollmentId, actor: CurrentUser, session: SessionDep
) -> Response:
    """pending -> active; an enrollment that is not pending (active or expired) is a 409."""
    enrollment = enrollments.confirm_enrollment(session, actor, enrollment_id)
    return json_response(enrollment)
