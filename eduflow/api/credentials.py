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
from typing import Any

from eduflow.config import get_settings
from eduflow.errors import Unauthorized
from eduflow.models.users import Role
from eduflow.security import decode_token

MALFORMED = "Malformed Authorization header; expected one 'Bearer <token>'"


class Malformed(Unauthorized):
    """The ``Authorization`` header breaks the rule above (401)."""

    def __init__(self) -> None:
        super().__init__(MALFORMED)


def bearer_token(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The bearer token of raw ASGI ``headers`` (lower-case names); None when no
    ``Authorization`` header is sent; raises ``Malformed`` for anything else."""
    found: bytes | None = None
    for name, value in headers:
        if name == b"authorization":
            if found is not None:
                raise Malformed()
            found = value
    if found is None:
        return None
    scheme, _, token = found.partition(b" ")
    token = token.strip()
    if scheme.lower() != b"bearer" or not token:
        raise Malformed()
    return token.decode("latin-1")


def bearer_token_or_none(headers: Iterable[tuple[bytes, bytes]]) -> tuple[bool, str | None]:
    """``(readable, token)`` for a fast path: ``readable`` False means the header is
    malformed and the request belongs to the routes (which answer 401)."""
    try:
        return True, bearer_token(headers)
    except Malformed:
        return False, None


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
