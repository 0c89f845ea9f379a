"""Auth routes: register, login, refresh, logout, me."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from eduflow.api.cached import ME_NAMESPACE
from eduflow.api.deps import CurrentUser, SessionDep
from eduflow.api.etag import encode
from eduflow.api.problems import problem_responses
from eduflow.cache.health import stats
from eduflow.db import session_scope
from eduflow.models.sessions import LoginRequest, RefreshRequest, TokenPair
from eduflow.models.users import UserCreate, UserPublic
from eduflow.services import auth, auth_state, users

router = APIRouter(tags=["auth"])
NO_STORE = {"Cache-Control": "no-store"}


def _client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post(
    "/auth/register/",
    status_code=201,
    summary="Create a student account",
    responses=problem_responses(400, 409, 413, 422),
)
def register(body: UserCreate, session: SessionDep) -> UserPublic:
    """Self-registration always creates a student."""
    return UserPublic.model_validate(users.register_user(session, body))


@router.post(
    "/auth/login/",
    summary="Log in with username (or email) and password",
    responses=problem_responses(400, 401, 403, 413, 422, 429),
)
def login(
    body: LoginRequest, request: Request, response: Response, session: SessionDep
) -> TokenPair:
    """Exchange credentials for an access and a refresh token (throttled on failures)."""
    response.headers.update(NO_STORE)
    return auth.login(session, body.username, body.password, _client_address(request))


@router.post(
    "/auth/refresh/",
    summary="Rotate the refresh token",
    responses=problem_responses(400, 401, 413, 422),
)
def refresh(body: RefreshRequest, response: Response) -> TokenPair:
    """Spend the refresh token for a new pair; a spent token revokes its whole login."""
    # The revocation of a reused token must be committed before the 401 is raised,
    # so this route owns its transaction instead of using SessionDep.
    with session_scope() as session:
        outcome = auth.rotate_refresh_token(session, body.refresh)
    if isinstance(outcome, auth.RefreshReused):
        raise outcome
    response.headers.update(NO_STORE)
    return outcome


@router.post(
    "/auth/logout/",
    status_code=204,
    summary="End the login of this refresh token",
    responses=problem_responses(400, 401, 413, 422),
)
def logout(body: RefreshRequest, session: SessionDep) -> Response:
    """Revoke the login: its access and refresh tokens stop working on the next request."""
    auth.logout(session, body.refresh)
    return Response(status_code=204)


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
