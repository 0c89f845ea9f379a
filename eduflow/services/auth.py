"""Authentication: login, refresh-token rotation, logout and login sessions.

Access and refresh tokens are HS256 JWTs (``eduflow.security``) carrying ``sub`` (user
id), ``type``, ``sid`` (the login session), ``jti``, ``iat`` and ``exp``; access tokens
also carry the ``role`` they were issued for (informative: the current role comes from
the auth state, see ``services/auth_state.py``). Each login is a ``LoginSession`` row
that remembers the jti of its one current refresh token, the client's user agent and
address, and when it was last refreshed. Refresh rotates that jti; presenting an older
(spent) jti again means the token was stolen or replayed, so the whole session is
revoked (reuse detection, audited). Logout revokes the session.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from sqlalchemy import or_, select, update
from sqlmodel import Session, col

from eduflow.config import get_settings
from eduflow.db import on_commit
from eduflow.errors import EduFlowError, Forbidden, NotFound, Unauthorized
from eduflow.logging import get_logger
from eduflow.metrics import LOGIN_ATTEMPTS
from eduflow.models.sessions import USER_AGENT_MAX_CHARS, LoginSession, SessionPublic, TokenPair
from eduflow.models.users import Role, User
from eduflow.security import burn_password_check, decode_token, encode_token, verify_password
from eduflow.services import audit, auth_state, throttle
from eduflow.services.auth_state import INVALID_TOKEN
from eduflow.services.permissions import Principal

INVALID_CREDENTIALS = "Invalid username or password"


def _now() -> datetime:
    return datetime.now(UTC)


def find_login_user(session: Session, identifier: str) -> User | None:
    """The account named by username (exact) or email (case-insensitive)."""
    ident = identifier.strip()
    return session.execute(
        select(User)
        .where(or_(col(User.username) == ident, col(User.email) == ident.lower()))
        .limit(1)
    ).scalar_one_or_none()


def issue_tokens(
    session: Session, user: User, *, user_agent: str | None = None, ip: str | None = None
) -> TokenPair:
    """Start a login session for ``user`` and return its first token pair."""
    assert user.id is not None
    settings = get_settings()
    session_id = uuid.uuid4().hex
    refresh, jti = encode_token(user.id, "refresh", session_id, settings.refresh_token_ttl)
    access, _ = encode_token(
        user.id, "access", session_id, settings.access_token_ttl, role=user.role
    )
    now = _now()
    session.add(
        LoginSession(
            id=session_id,
            user_id=user.id,
            refresh_jti=jti,
            created_at=now,
            last_used_at=now,
            expires_at=now + timedelta(seconds=settings.refresh_token_ttl),
            user_agent=user_agent[:USER_AGENT_MAX_CHARS] if user_agent else None,
            ip=ip[:64] if ip else None,
        )
    )
    session.flush()
    # Write-through after the commit: the first request with these tokens finds the state
    # in the cache instead of reading the database.
    args = (user.id, user.auth_version, user.role, user.is_active, user.username, session_id)
    on_commit(session, lambda: auth_state.publish_new_session(*args))
    return TokenPair(access=access, refresh=refresh, expires_in=settings.access_token_ttl)


def login(
    session: Session,
    identifier: str,
    password: str,
    client_address: str,
    user_agent: str | None = None,
) -> TokenPair:
    """Check the credentials (throttled per account and address) and start a session."""
    user = find_login_user(session, identifier)
    account = f"user:{user.id}" if user is not None else f"name:{identifier.strip().lower()}"
    try:
        throttle.check_login_allowed(account, client_address)
    except EduFlowError:
        LOGIN_ATTEMPTS.labels("throttled").inc()
        raise
    if user is None:
        burn_password_check(password)  # same cost as a real check: no enumeration by timing
        ok = False
    else:
        ok = verify_password(password, user.password_hash)
    if not ok or user is None:
        throttle.record_login_failure(account, client_address)
        LOGIN_ATTEMPTS.labels("failed").inc()
        raise Unauthorized(INVALID_CREDENTIALS)
    if not user.is_active or user.deleted_at is not None:
        LOGIN_ATTEMPTS.labels("disabled").inc()
        raise Forbidden("This account is disabled", slug="account-disabled")
    throttle.clear_account_failures(account)
    LOGIN_ATTEMPTS.labels("success").inc()
    get_logger("eduflow.auth").info("login", user_id=user.id)
    return issue_tokens(session, user, user_agent=user_agent, ip=client_address)


def _refresh_claims(token: str) -> dict[str, Any]:
    try:
        return decode_token(token, "refresh")
    except (jwt.InvalidTokenError, ValueError, TypeError) as exc:
        raise Unauthorized(INVALID_TOKEN) from exc


def _locked_login_session(session: Session, claims: dict[str, Any]) -> LoginSession | None:
    login_session: LoginSession | None = session.execute(
        select(LoginSession).where(col(LoginSession.id) == claims["sid"]).with_for_update()
    ).scalar_one_or_none()
    if login_session is None or login_session.user_id != int(claims["sub"]):
        return None
    return login_session


class RefreshReused(EduFlowError):
    """A spent refresh token came back; its whole login has been revoked (401 once committed)."""

    status = 401
    slug = "refresh-token-reused"
    title = "Refresh token reused"


def rotate_refresh_token(session: Session, token: str) -> TokenPair | RefreshReused:
    """Spend ``token`` and issue the next pair of its login.

    Reuse of a spent token revokes the login and is *returned*, not raised: the caller
    commits the revocation first and then answers 401 with it.
    """
    claims = _refresh_claims(token)
    login_session = _locked_login_session(session, claims)
    if login_session is None or login_session.revoked_at is not None:
        raise Unauthorized(INVALID_TOKEN)
    if login_session.refresh_jti != claims["jti"]:
        revoke_login_session(session, login_session, "refresh-reuse")
        owner = session.get(User, login_session.user_id)
        if owner is not None:
            holder = Principal(
                id=login_session.user_id, username=owner.username, role=Role(owner.role)
            )
            audit.record(session, holder, "session.revoked_on_reuse", "session", login_session.id)
        get_logger("eduflow.auth").warning(
            "refresh_token_reuse", user_id=login_session.user_id, session_id=login_session.id
        )
        return RefreshReused("This refresh token was already used; the login has been revoked")
    user = session.get(User, login_session.user_id)
    if user is None or not user.is_active:
        raise Unauthorized(INVALID_TOKEN)
    assert user.id is not None
    settings = get_settings()
    refresh, jti = encode_token(user.id, "refresh", login_session.id, settings.refresh_token_ttl)
    access, _ = encode_token(
        user.id, "access", login_session.id, settings.access_token_ttl, role=user.role
    )
    now = _now()
    login_session.refresh_jti = jti
    login_session.last_used_at = now
    login_session.expires_at = now + timedelta(seconds=settings.refresh_token_ttl)
    session.add(login_session)
    session.flush()
    return TokenPair(access=access, refresh=refresh, expires_in=settings.access_token_ttl)


def logout(session: Session, token: str) -> None:
    """Revoke the login of ``token`` (any token of that login, spent or current, will do)."""
    claims = _refresh_claims(token)
    login_session = _locked_login_session(session, claims)
    if login_session is None:
        raise Unauthorized(INVALID_TOKEN)
    if login_session.revoked_at is None:
        revoke_login_session(session, login_session, "logout")


def revoke_login_session(session: Session, login_session: LoginSession, reason: str) -> None:
    """Revoke one login; its tokens stop working once the transaction commits."""
    login_session.revoked_at = _now()
    login_session.revoked_reason = reason
    session.add(login_session)
    session.flush()
    sid = login_session.id
    on_commit(session, lambda: auth_state.publish_sessions_revoked([sid]))


def revoke_user_sessions(
    session: Session, user_id: int, reason: str, *, keep: str | None = None
) -> int:
    """Revoke every live login of a user (deactivation, password change, deletion) but
    ``keep``; returns how many."""
    conditions = [col(LoginSession.user_id) == user_id, col(LoginSession.revoked_at).is_(None)]
    if keep is not None:
        conditions.append(col(LoginSession.id) != keep)
    ids = list(session.execute(select(col(LoginSession.id)).where(*conditions)).scalars())
    if ids:
        session.execute(
            update(LoginSession)
            .where(col(LoginSession.id).in_(ids))
            .values(revoked_at=_now(), revoked_reason=reason)
        )
        on_commit(session, lambda: auth_state.publish_sessions_revoked(ids))
    return len(ids)


def list_sessions(session: Session, actor: Principal) -> list[SessionPublic]:
    """The caller's live logins, newest first; ``current`` marks the one of this token."""
    rows = session.execute(
        select(LoginSession)
        .where(
            col(LoginSession.user_id) == actor.id,
            col(LoginSession.revoked_at).is_(None),
            col(LoginSession.expires_at) > _now(),
        )
        .order_by(col(LoginSession.created_at).desc(), col(LoginSession.id))
    ).scalars()
    return [
        SessionPublic(
            id=row.id,
            created_at=row.created_at,
            last_used_at=row.last_used_at,
            user_agent=row.user_agent,
            ip=row.ip,
            current=row.id == actor.session_id,
        )
        for row in rows
    ]


def revoke_own_session(session: Session, actor: Principal, session_id: str) -> None:
    """End one of the caller's logins (404 for anyone else's, or one already ended)."""
    row: LoginSession | None = session.execute(
        select(LoginSession).where(col(LoginSession.id) == session_id).with_for_update()
    ).scalar_one_or_none()
    if row is None or row.user_id != actor.id or row.revoked_at is not None:
        raise NotFound("No such session")
    revoke_login_session(session, row, "revoked-by-user")
