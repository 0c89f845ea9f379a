"""Enrollments routes: translate HTTP to ``services.enrollments`` and back."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response

from eduflow.api.deps import CurrentUser, PageDep, SessionDep, page_body
from eduflow.api.etag import encode
from eduflow.api.idempotency import IdempotencyDep
from eduflow.api.problems import problem_responses
from eduflow.models.enrollments import (
    EnrollmentCreate,
    EnrollmentPage,
    EnrollmentPublic,
    EnrollmentStatus,
)
from eduflow.services import enrollments

router = APIRouter(tags=["enrollments"])
EnrollmentId = Annotated[int, Path(ge=1, le=2**31 - 1, description="Enrollment id.")]


@router.post(
    "/enrollments/",
    summary="Enroll in a course (students)",
    status_code=201,
    response_model=EnrollmentPublic,
    responses=problem_responses(400, 401, 403, 404, 409, 413, 422, 503),
)
def enroll(
    idem: IdempotencyDep, body: EnrollmentCreate, actor: CurrentUser, session: SessionDep
) -> Response:
    """Free course: ``active``; paid course: ``pending`` until confirmed. 409
    ``already-enrolled`` for a second enrollment, 409 ``course-full`` when no seat is left.
    Honours ``Idempotency-Key``."""
    if idem.replay:
        return idem.replay
    enrollment = enrollments.enroll_student(session, actor, body.course)
    return idem.respond(
        201, encode(enrollment), {"Location": f"/api/v1/enrollments/{enrollment.id}/"}
    )


@router.get(
    "/enrollments/",
    summary="List enrollments",
    response_model=EnrollmentPage,
    responses=problem_responses(401, 422),
)
def list_enrollments(
    request: Request,
    actor: CurrentUser,
    session: SessionDep,
    page: PageDep,
    course: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="Course id.")] = None,
    status: Annotated[EnrollmentStatus | None, Query(description="Only this status.")] = None,
) -> Response:
    """Students: their own; instructors: those in their courses; admins: all."""
    count, rows = enrollments.list_enrollments(
        session, actor, course_id=course, status=status, offset=page.offset, limit=page.page_size
    )
    body = EnrollmentPage.model_validate(page_body(request, page, count, rows))
    return Response(encode(body), media_type="application/json")


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
    return Response(encode(enrollment), media_type="application/json")


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
    return Response(encode(enrollment), media_type="application/json")
