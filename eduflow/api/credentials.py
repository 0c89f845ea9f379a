"""The one reader of a request's ``Authorization`` header, for the dependencies and both
fast paths: one rule, so no path can see a caller another path would refuse.

- no header: anonymous;
- exactly one header ``Bearer <token>`` (scheme case-insensitive, the token trimmed and
  not empty): that token;
- anything else -- the header repeated (whatever the values), empty, another scheme, a
  scheme without a token -- is malformed: 401, and a fast path leaves the request to the
  routes, which answer that 401.

``verified_claims`` is the fast paths' check of an access token's signature and expiry,
remembered per token; the token's state (revocation, role) is checked on every request.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, Literal

from eduflow.config import get_settings
from eduflow.errors import Unauthorized
from eduflow.models.users import Role
from eduflow.security import decode_token

MALFORMED = "Malformed Authorization header; expected one 'Bearer <token>'"


class Malformed(Unauthorized):
    """The ``Authorization`` header breaks the rule above (401)."""

    def __init__(self) -> None:
        super().__init__(MALFORMED)


def bearer_token_or_none(headers: Iterable[tuple[bytes, bytes]]) -> tuple[bool, str | None]:
    """``(readable, token)`` of raw ASGI ``headers`` (lower-case names): token None when no
    ``Authorization`` header is sent; ``readable`` False when the header breaks the rule
    (a fast path then leaves the request to the routes, which answer 401)."""
    found: bytes | None = None
    for name, value in headers:
        if name == b"authorization":
            if found is not None:
                return False, None
            found = value
    if found is None:
        return True, None
    scheme, _, token = found.partition(b" ")
    token = token.strip()
    if scheme.lower() != b"bearer" or not token:
        return False, None
    return True, token.decode("latin-1")


def bearer_token(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The bearer token of ``headers``; None when no ``Authorization`` header is sent;
    raises ``Malformed`` for anything else."""
    readable, token = bearer_token_or_none(headers)
    if not readable:
        raise Malformed()
    return token


def fast_path_claims(
    headers: Iterable[tuple[bytes, bytes]],
) -> dict[str, Any] | Literal[False] | None:
    """The verified claims of the request's access token for a fast read (None:
    anonymous; False: leave it to the routes, which answer a malformed header or a bad
    token with a 401)."""
    readable, token = bearer_token_or_none(headers)
    if not readable:
        return False
    if token is None:
        return None
    return verified_claims(token) or False


# Verified claims by token: a client sends the same access token for its whole lifetime,
# and checking an HS256 signature costs more than the rest of a cached answer. The
# signature is a property of the string, so only the expiry needs checking again;
# revocation, deactivation and role changes are checked on every request (auth state).
_verified: dict[str, dict[str, Any]] = {}
_verified_under: list[object] = [None]
VERIFIED_TOKENS = 10_000


def verified_claims(token: str) -> dict[str, Any] | None:
    """The claims of a valid, unexpired access token; None otherwise."""
    settings = get_settings()
    if _verified_under[0] is not settings:  # new settings (maybe a new key): start over
        _verified.clear()
        _verified_under[0] = settings
    claims = _verified.get(token)
    if claims is None:
        try:
            claims = decode_token(token, "access")
            Role(claims["role"])
            float(claims["exp"])
        except Exception:
            return None
        if len(_verified) >= VERIFIED_TOKENS:
            _verified.clear()
        _verified[token] = claims
    if time.time() >= float(claims["exp"]):
        _verified.pop(token, None)
        return None
    return claims
