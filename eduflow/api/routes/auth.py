"""Auth routes: register, login, refresh, logout, password reset, email verification."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from eduflow.api.deps import CurrentUser, SessionDep, client_address
from eduflow.api.problems import problem_responses
from eduflow.db import session_scope
from eduflow.models.sessions import LoginRequest, RefreshRequest, TokenPair
from eduflow.models.users import (
    EmailVerification,
    PasswordResetConfirm,
    PasswordResetRequest,
    UserCreate,
    UserPublic,
)
from eduflow.services import accounts, auth, email_verification, password_reset

router = APIRouter(tags=["auth"])
NO_STORE = {"Cache-Control": "no-store"}


@router.post(
    "/auth/register/",
    status_code=201,
    summary="Create a student account",
    responses=problem_responses(400, 409, 413, 422, 429),
)
def register(body: UserCreate, request: Request, session: SessionDep) -> UserPublic:
    """Self-registration always creates a student and emails a verification link."""
    return UserPublic.model_validate(accounts.register(session, body, client_address(request)))


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
    return auth.login(
        session,
        body.username,
        body.password,
        client_address(request),
        request.headers.get("user-agent"),
    )


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


@router.post(
    "/auth/password-reset/",
    status_code=202,
    response_class=Response,
    summary="Ask for a password reset email",
    responses=problem_responses(400, 413, 422, 429),
)
def request_password_reset(
    body: PasswordResetRequest, request: Request, session: SessionDep
) -> Response:
    """202 whether or not the address has an account (an existing one gets one email)."""
    password_reset.request_reset(session, body.email, client_address(request))
    return Response(status_code=202)


@router.post(
    "/auth/password-reset/confirm/",
    status_code=204,
    summary="Set a new password with the emailed token",
    responses=problem_responses(400, 413, 422),
)
def confirm_password_reset(body: PasswordResetConfirm, session: SessionDep) -> Response:
    """The password changes and every login of the account ends; the token is spent."""
    password_reset.confirm_reset(session, body.token, body.password)
    return Response(status_code=204)


@router.post(
    "/auth/verify-email/",
    status_code=204,
    summary="Verify an email address with the emailed token",
    responses=problem_responses(400, 413, 422),
)
def verify_email(body: EmailVerification, session: SessionDep) -> Response:
    """Marks the address verified, if the account still has the address it was sent to."""
    email_verification.verify(session, body.token)
    return Response(status_code=204)


@router.post(
    "/auth/verify-email/resend/",
    status_code=202,
    response_class=Response,
    summary="Send the verification email again",
    responses=problem_responses(401, 429),
)
def resend_verification(principal: CurrentUser, session: SessionDep) -> Response:
    """One more verification email to the caller's address (throttled)."""
    email_verification.resend(session, principal)
    return Response(status_code=202)
