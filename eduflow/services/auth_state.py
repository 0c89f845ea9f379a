"""Auth state: what an access token is checked against, without a database query.

An access token is accepted only when (a) its login session is not revoked and (b) the
user is active. The caller then acts with the role the user has *now* -- not the one
the token was issued for -- so a role change takes effect on the next request with the
same token (a promoted user acts as an instructor at once, a demoted one meets 403).

Redis configured
  Both facts live in Redis and are read with one ``MGET``:
    ``eduflow:auth:user:{id}``    -> ``"{auth_version}|{role}|{active}|{username}"``
    ``eduflow:auth:session:{sid}`` -> ``"1"`` (live) or ``"0"`` (revoked)
  On a miss both are read from the database and filled. Every change is written through
  *after its commit*, by whichever process made it (API or CLI, they share Redis):
    * user state: every change of role, activity, password or profile bumps
      ``users.auth_version`` under a row lock; the cache is written with a
      compare-and-set script that keeps the highest version. A request that read the
      old row before the commit and fills the cache afterwards cannot overwrite the
      newer state, and two racing writers converge on the newest one.
    * session state only ever goes live -> revoked. Revocation is a plain ``SET "0"``;
      fills from the database use ``SET NX``, so a stale "live" read never overwrites
      a revocation.
  Each write-through ends with a fence that drops the near caches of every process.
  If Redis does not answer, the state is read from the database (never fail open).
  Entries expire after ``EDUFLOW_AUTH_STATE_TTL`` seconds, which also bounds the damage
  of a write-through lost to a Redis outage.

Embedded default (no Redis)
  The CLI and the server are different processes that share only the SQLite file, so an
  in-process cache could not be invalidated by ``eduflow admin users deactivate``.
  Correctness wins: each authenticated request reads both facts with one indexed query
  (a primary-key join, microseconds on SQLite).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import jwt
from sqlalchemy import select
from sqlmodel import Session, col

from eduflow.config import get_settings
from eduflow.db import on_commit, session_scope
from eduflow.errors import Unauthorized
from eduflow.logging import get_logger
from eduflow.models.sessions import LoginSession
from eduflow.models.users import Role, User
from eduflow.security import decode_token
from eduflow.services.permissions import Principal

INVALID_TOKEN = "Invalid or expired token"

# Keep the cached user state with the highest auth_version (KEYS[1]; ARGV: version,
# value, ttl). The value starts with "{version}|".
_CAS_SCRIPT = """
local cur = redis.call('GET', KEYS[1])
if cur then
  local v = tonumber(string.match(cur, '^(%d+)|'))
  if v and v > tonumber(ARGV[1]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""


def _user_key(user_id: int) -> str:
    from eduflow.cache.stores import key

    return key("auth", "user", user_id)


def _session_key(session_id: str) -> str:
    from eduflow.cache.stores import key

    return key("auth", "session", session_id)


@dataclass(frozen=True, slots=True)
class AuthState:
    """What an access token is checked against."""

    username: str
    role: str
    is_active: bool
    version: int
    session_live: bool


def _redis() -> Any:
    from eduflow.cache.stores import get_redis

    return get_redis()


def _encode_user_state(version: int, role: str, active: bool, username: str) -> bytes:
    return f"{version}|{role}|{int(active)}|{username}".encode()


def publish_user_state(user_id: int, version: int, role: str, active: bool, username: str) -> None:
    """Write a user's auth state to the shared cache unless a newer version is there."""
    from eduflow.cache.stores import fence

    client = _redis()
    if client is None:
        return
    value = _encode_user_state(version, role, active, username)
    try:
        client.eval(
            _CAS_SCRIPT, 1, _user_key(user_id), version, value, get_settings().auth_state_ttl
        )
        fence(client)  # the change takes effect on the next request, in every process
    except Exception:  # Redis down: readers fall back to the DB; the TTL bounds staleness
        get_logger("eduflow.auth").warning("auth_state_publish_failed", user_id=user_id)


def publish_user_after_commit(session: Session, user: User) -> None:
    """Register the write-through of ``user``'s auth state for after the commit."""
    assert user.id is not None
    args = (user.id, user.auth_version, user.role, user.is_active, user.username)
    on_commit(session, lambda: publish_user_state(*args))


def publish_sessions_revoked(session_ids: list[str]) -> None:
    """Mark logins revoked in the shared cache (after their commit)."""
    from eduflow.cache.stores import fence

    client = _redis()
    if client is None or not session_ids:
        return
    try:
        pipe = client.pipeline(transaction=False)
        for sid in session_ids:
            pipe.set(_session_key(sid), b"0", ex=get_settings().auth_state_ttl)
        pipe.execute()
        fence(client)  # the logout takes effect on the next request, in every process
    except Exception:
        get_logger("eduflow.auth").warning("auth_state_publish_failed", sessions=len(session_ids))


def _load_state_from_db(user_id: int, session_id: str) -> AuthState | None:
    # The primary, never the read replica: a lagging replica could miss a revocation.
    with session_scope() as session:
        row = session.execute(
            select(
                col(User.username),
                col(User.role),
                col(User.is_active),
                col(User.auth_version),
                col(LoginSession.id),
                col(LoginSession.revoked_at),
            )
            .select_from(User)
            .outerjoin(
                LoginSession,
                (col(LoginSession.id) == session_id) & (col(LoginSession.user_id) == User.id),
            )
            .where(col(User.id) == user_id)
        ).first()
    if row is None:
        return None
    username, role, active, version, sid, revoked_at = row
    return AuthState(username, role, bool(active), int(version), sid is not None and not revoked_at)


def _parse_user_state(raw: bytes) -> tuple[int, str, bool, str] | None:
    try:
        version, role, active, username = raw.decode().split("|", 3)
        return int(version), role, active == "1", username
    except (ValueError, UnicodeDecodeError):
        return None


def load_auth_state(user_id: int, session_id: str) -> AuthState | None:
    """The user's and session's state: from Redis when possible, else from the database."""
    client = _redis()
    if client is None:
        return _load_state_from_db(user_id, session_id)
    ukey, skey = _user_key(user_id), _session_key(session_id)
    try:
        raw_user, raw_session = client.mget(ukey, skey)
    except Exception:
        return _load_state_from_db(user_id, session_id)
    parsed = _parse_user_state(raw_user) if raw_user is not None else None
    if parsed is not None and raw_session is not None:
        version, role, active, username = parsed
        return AuthState(username, role, active, version, raw_session == b"1")
    state = _load_state_from_db(user_id, session_id)
    if state is None:
        return None
    ttl = get_settings().auth_state_ttl
    try:
        if parsed is None:
            client.eval(
                _CAS_SCRIPT,
                1,
                ukey,
                state.version,
                _encode_user_state(state.version, state.role, state.is_active, state.username),
                ttl,
            )
        if raw_session is None:
            client.set(skey, b"1" if state.session_live else b"0", ex=ttl, nx=True)
    except Exception:
        pass  # the answer came from the database; the next request tries the cache again
    return state


def principal_from_access_token(token: str) -> Principal:
    """The caller behind ``token``, with the role they have *now*; 401 when the token is
    invalid or expired, its login revoked, or the user inactive or gone."""
    try:
        claims = decode_token(token, "access")
        user_id = int(claims["sub"])
        session_id = str(claims["sid"])
        Role(claims["role"])  # every token we issue names one; anything else is forged
    except (jwt.InvalidTokenError, ValueError, KeyError, TypeError) as exc:
        raise Unauthorized(INVALID_TOKEN) from exc
    state = load_auth_state(user_id, session_id)
    if state is None or not state.is_active or not state.session_live:
        raise Unauthorized(INVALID_TOKEN)
    try:
        role = Role(state.role)
    except ValueError as exc:
        raise Unauthorized(INVALID_TOKEN) from exc
    return Principal(id=user_id, username=state.username, role=role, session_id=session_id)


def auth_state_keys(claims: dict[str, Any]) -> tuple[str, str]:
    """The Redis keys of the user and session state an access token is checked against.

    The catalogue cache's fast path reads them in the same round trip as the response.
    """
    return _user_key(int(claims["sub"])), _session_key(str(claims["sid"]))


def profile_key(user_id: int) -> str:
    """The Redis key of a user's encoded ``GET /auth/me/`` body.

    Stored as ``"{auth_version}|{body}"`` and served only while that version is the one
    of the cached auth state read in the same ``MGET``: every change of role, activity,
    password, profile (name, email, verification) or a deletion bumps the version
    (``services.users.changed``), so an older body is never answered.
    """
    from eduflow.cache.stores import key

    return key("auth", "me", user_id)


def cached_profile(raw_user: bytes | None, raw_profile: bytes | None) -> bytes | None:
    """The cached ``/auth/me/`` body when it was built from the current auth state."""
    if raw_user is None or raw_profile is None:
        return None
    version, sep, body = raw_profile.partition(b"|")
    if not sep or not body or raw_user.partition(b"|")[0] != version:
        return None
    return body


def publish_profile(user_id: int, version: int, body: bytes) -> None:
    """Store a ``/auth/me/`` body built from the row at ``version`` (best effort; the
    compare-and-set keeps the newest version when requests race)."""
    client = _redis()
    if client is None:
        return
    ttl = get_settings().auth_state_ttl
    with contextlib.suppress(Exception):  # Redis down: the next request reads the database
        client.eval(_CAS_SCRIPT, 1, profile_key(user_id), version, b"%d|" % version + body, ttl)


def cached_principal(
    claims: dict[str, Any], raw_user: bytes | None, raw_session: bytes | None
) -> Principal | None:
    """The caller, from verified ``claims`` and the cached state already read; None when
    the state is missing or does not admit the token (the full check then decides).

    A token issued for another role than the current one is not confirmed here: the
    near-cache paths pick the caller's audience by the token's role, so such a request
    goes to :func:`principal_from_access_token`, which admits it with the new role.
    """
    parsed = _parse_user_state(raw_user) if raw_user is not None else None
    if parsed is None or raw_session != b"1":
        return None
    _version, role, active, username = parsed
    if not active or role != claims.get("role"):
        return None
    try:
        return Principal(
            id=int(claims["sub"]), username=username, role=Role(role), session_id=str(claims["sid"])
        )
    except (ValueError, KeyError):
        return None


def publish_new_session(
    user_id: int, version: int, role: str, active: bool, username: str, session_id: str
) -> None:
    """Cache a new login session as live, and its user's state (best effort: a miss only
    costs the first request a database read)."""
    client = _redis()
    if client is None:
        return
    ttl = get_settings().auth_state_ttl
    value = _encode_user_state(version, role, active, username)
    with contextlib.suppress(Exception):
        pipe = client.pipeline(transaction=False)
        pipe.eval(_CAS_SCRIPT, 1, _user_key(user_id), version, value, ttl)
        pipe.set(_session_key(session_id), b"1", ex=ttl, nx=True)
        pipe.execute()
