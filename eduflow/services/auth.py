"""Authentication: turning an access token into a Principal."""

from __future__ import annotations

import jwt

from eduflow.db import session_scope
from eduflow.errors import Unauthorized
from eduflow.models.users import Role, User
from eduflow.security import decode_token
from eduflow.services.permissions import Principal


def principal_from_access_token(token: str) -> Principal:
    """The caller behind ``token``; 401 when it is invalid, revoked or the user is inactive."""
    try:
        claims = decode_token(token, "access")
        user_id = int(claims["sub"])
    except (jwt.InvalidTokenError, ValueError, KeyError) as exc:
        raise Unauthorized("Invalid or expired token") from exc
    with session_scope(read_only=True) as session:
        user = session.get(User, user_id)
        if user is None or not user.is_active:
            raise Unauthorized("Invalid or expired token")
        return Principal(
            id=user_id, username=user.username, role=Role(user.role), session_id=claims["sid"]
        )
