"""Progress routes: translate HTTP to ``services.progress`` and back."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from eduflow.api.deps import CurrentUser, SessionDep
from eduflow.api.etag import ETAG_RESPONSES, encode, json_response
from eduflow.api.idempotency import IdempotencyDep
from eduflow.api.problems import problem_responses
from eduflow.api.progress_groups import progress_groups
from eduflow.api.response_cache import CachedResponse
from eduflow.cache import progress as progress_cache
from eduflow.cache.responses import Plan, get_or_build
from eduflow.models.progress import (
    CourseProgress,
    LessonProgressPublic,
    ProgressBatch,
    ProgressResult,
)
from eduflow.services import progress, progress_reads
from eduflow.services.permissions import Principal

router = APIRouter(tags=["progress"])
EnrollmentId = Annotated[int, Path(ge=1, le=2**31 - 1, description="Enrollment id.")]
CourseId = Annotated[int, Path(ge=1, le=2**31 - 1, description="Course id.")]


@router.post(
    "/enrollments/{enrollment_id}/progress/",
    summary="Record progress events (the enrolled student)",
    response_model=ProgressResult,
    responses=problem_responses(400, 401, 403, 404, 409, 413, 422, 503),
)
def record_progress(
    idem: IdempotencyDep, enrollment_id: EnrollmentId, body: ProgressBatch, session: SessionDep
) -> Response:
    """1-100 events, validated as a whole (422: nothing written). An ``event_id`` already
    recorded counts as a duplicate and changes nothing; completion only moves forward.
    Honours ``Idempotency-Key``."""
    if idem.replay:
        return idem.replay
    result = progress.record_progress(session, idem.actor, enrollment_id, body)
    return idem.respond(200, encode(result))


async def record_as(actor: Principal, enrollment_id: int, batch: ProgressBatch) -> ProgressResult:
    """The route's service call off the event loop, in a transaction shared with the other
    batches in flight (``eduflow.api.progress_groups``): the write fast path
    (``eduflow.api.fast_writes``) answers plain batches with it."""
    return await progress_groups().record(actor, enrollment_id, batch)


@router.get(
    "/enrollments/{enrollment_id}/progress/",
    summary="Show an enrollment's progress per lesson",
    response_model=list[LessonProgressPublic],
    responses=problem_responses(401, 404, 422),
)
def enrollment_progress(
    enrollment_id: EnrollmentId, actor: CurrentUser, session: SessionDep
) -> Response:
    """Every lesson of the course, in order, with ``viewed_at`` and ``completed_at``: for the
    enrolled student, the course owner and admins (404 for anyone else)."""
    rows = progress_reads.enrollment_progress(session, actor, enrollment_id)
    return json_response(b"[" + b",".join(encode(r) for r in rows) + b"]")


@router.get(
    "/courses/{course_id}/progress/",
    summary="Learning figures of a course (owner/admin)",
    response_model=CourseProgress,
    responses={**ETAG_RESPONSES, **problem_responses(401, 403, 404, 422)},
)
def course_progress(
    request: Request, course_id: CourseId, actor: CurrentUser, session: SessionDep
) -> Response:
    """Enrolled, started and completed active enrollments, completion rate, average percent
    and completions per lesson. Cached; never stale after a progress write."""

    def build(_since: int | None) -> tuple[bytes, bytes]:  # the primary: never stale
        figures, owner_id = progress_reads.course_progress_with_owner(session, actor, course_id)
        return encode(figures), str(owner_id).encode()

    plan = Plan(
        progress_cache.NAMESPACE,
        progress_cache.course_progress_key(course_id),
        progress_cache.course_progress_deps(course_id),
    )
    entry, hit = get_or_build(plan, build)
    if hit and not progress_reads.may_see_course_progress(actor, int(entry.meta or b"0")):
        entry, hit = get_or_build(None, build)  # the service says 403 or 404
    return CachedResponse(request, entry, hit)
