"""Audit route (admin only): the trail of security-relevant changes, newest first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from eduflow.api.deps import AdminUser, PageDep, SessionDep, page_body
from eduflow.api.problems import problem_responses
from eduflow.models.audit import AuditPage
from eduflow.services import audit

router = APIRouter(tags=["audit"])


@router.get(
    "/audit/", summary="List audit records (admin)", responses=problem_responses(401, 403, 422)
)
def list_audit(
    request: Request,
    admin: AdminUser,
    session: SessionDep,
    page: PageDep,
    actor: Annotated[
        str | None, Query(max_length=150, description="Username, or `operator` for the CLI.")
    ] = None,
    action: Annotated[
        str | None, Query(max_length=60, description="Such as `user.role_changed`.")
    ] = None,
    target_type: Annotated[
        str | None, Query(max_length=40, description="user, course, enrollment, session, …")
    ] = None,
    target_id: Annotated[str | None, Query(max_length=64, description="The target's id.")] = None,
) -> AuditPage:
    """Paginated audit records with optional filters; records are never changed here."""
    filters = audit.AuditFilters(
        actor=actor, action=action, target_type=target_type, target_id=target_id
    )
    count, rows = audit.list_records(
        session, admin, filters, offset=page.offset, limit=page.page_size
    )
    return AuditPage.model_validate(page_body(request, page, count, rows))
