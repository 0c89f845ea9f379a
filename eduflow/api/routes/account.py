"""The caller's own account: profile, password, logins and deletion."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from eduflow.api.cached import ME_NAMESPACE
from eduflow.api.deps import CurrentUser, SessionDep
from eduflow.api.etag import encode
from eduflow.api.problems import problem_responses
from eduflow.cache.health import stats
from eduflow.models.sessions import SessionPublic
from eduflow.models.users import PasswordChange, PasswordConfirm, ProfileUpdate, UserPublic
from eduflow.services import accounts, auth, auth_state, users

router = APIRouter(tags=["auth"])
NO_STORE = {"Cache-Control": "no-store"}
SessionId = Annotated[str, Path(min_length=1, max_length=64, description="Login session id.")]


@router.get(
    "/auth/me/",
    summary="The current user",
    response_model=UserPublic,
    responses=problem_responses(401),
)
def me(principal: CurrentUser, session: SessionDep) -> Response:
    """The caller's own account.

    Also stored for ``eduflow.api.cached``, which answers the next calls without a
    database query while the caller's auth state is unchanged.
    """
    user = users.get_user(session, principal.id)
    body = encode(UserPublic.model_validate(user))
    assert user.id is not None
    stats.record(ME_NAMESPACE, "misses")
    auth_state.publish_profile(user.id, user.auth_version, body)
    return Response(body, media_type="application/json", headers=NO_STORE)


@router.patch(
    "/auth/me/",
    summary="Change your full name or email",
    responses=problem_responses(400, 401, 409, 413, 422),
)
def update_me(
    body: ProfileUpdate, principal: CurrentUser, session: SessionDep, response: Response
) -> UserPublic:
    """A new email is unique, unverified until its emailed link is opened."""
    response.headers.update(NO_STORE)
    return UserPublic.model_validate(accounts.update_profile(session, principal, body))


@router.delete(
    "/auth/me/",
    status_code=204,
    summary="Delete your account",
    responses=problem_responses(400, 401, 403, 409, 413, 422),
)
def delete_me(body: PasswordConfirm, principal: CurrentUser, session: SessionDep) -> Response:
    """Ends every login, erases username, email and name, cancels the enrollments."""
    accounts.delete_own_account(session, principal, body.password)
    return Response(status_code=204)


@router.post(
    "/auth/password/",
    status_code=204,
    summary="Change your password",
    responses=problem_responses(400, 401, 403, 413, 422),
)
def change_password(body: PasswordChange, principal: CurrentUser, session: SessionDep) -> Response:
    """Every other login of the account ends; this one stays."""
    accounts.change_password(session, principal, body.current_password, body.new_password)
    return Response(status_code=204)


@router.get(
    "/auth/sessions/",
    summary="Your live logins",
    responses=problem_responses(401),
)
def list_sessions(
    principal: CurrentUser, session: SessionDep, response: Response
) -> list[SessionPublic]:
    """Newest first; ``current`` is the login of the token used for this request."""
    response.headers.update(NO_STORE)
    return auth.list_sessions(session, principal)


@router.delete(
    "/auth/sessions/{session_id}/",
    status_code=204,
    summary="End one of your logins",
    responses=problem_responses(401, 404),
)
def revoke_session(session_id: SessionId, principal: CurrentUser, session: SessionDep) -> Response:
    """Its tokens stop working on the next request; another user's session is a 404."""
    auth.revoke_own_session(session, principal, session_id)
    return Response(status_code=204)
