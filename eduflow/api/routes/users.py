"""Users routes (admin only): list, show, change role or activity, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from eduflow.api.deps import AdminUser, ListingDep, SessionDep, listing_body
from eduflow.api.problems import problem_responses
from eduflow.models.users import Role, UserAdminView, UserPage, UserUpdate
from eduflow.services import accounts, users
from eduflow.services.paging import Page

router = APIRouter(tags=["users"])
UserId = Annotated[int, Path(ge=1, le=2**31 - 1, description="User id.")]


@router.get(
    "/users/",
    summary="List users (admin)",
    responses=problem_responses(400, 401, 403, 422),
)
def list_users(
    request: Request,
    admin: AdminUser,
    session: SessionDep,
    page: ListingDep,
    role: Annotated[Role | None, Query(description="Only users with this role.")] = None,
    search: Annotated[
        str | None, Query(max_length=200, description="Part of the username or email.")
    ] = None,
) -> UserPage:
    """Paginated accounts, filtered by role and a username/email search."""
    found = users.users_page(session, role=role, search=search, request=page.request)
    views = [UserAdminView.model_validate(u) for u in found.results]
    shown = Page(found.count, found.count_exact, views, found.next_cursor)
    return UserPage.model_validate(listing_body(request, page, shown))


@router.get(
    "/users/{user_id}/", summary="Show a user (admin)", responses=problem_responses(401, 403, 404)
)
def get_user(user_id: UserId, admin: AdminUser, session: SessionDep) -> UserAdminView:
    """One account (a deleted one is a 404)."""
    return UserAdminView.model_validate(users.get_account(session, user_id))


@router.patch(
    "/users/{user_id}/",
    summary="Change a user's role or activity (admin)",
    responses=problem_responses(400, 401, 403, 404, 409, 413, 422),
)
def update_user(
    user_id: UserId, body: UserUpdate, admin: AdminUser, session: SessionDep
) -> UserAdminView:
    """Apply ``{role?, is_active?}``; takes effect on the user's next request."""
    return UserAdminView.model_validate(users.update_user(session, admin, user_id, body))


@router.delete(
    "/users/{user_id}/",
    status_code=204,
    summary="Delete an account (admin)",
    responses=problem_responses(401, 403, 404, 409),
)
def delete_user(user_id: UserId, admin: AdminUser, session: SessionDep) -> Response:
    """Ends every login, erases username, email and name, cancels the enrollments."""
    accounts.delete_account(session, admin, user_id)
    return Response(status_code=204)
