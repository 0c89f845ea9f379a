"""The one reader of a request's ``Authorization`` header, for the dependencies and both
fast paths: one rule, so no path can see a caller another path would refuse.

- no header: anonymous;
- exactly one header ``Bearer <token>`` (scheme case-insensitive, the token trimmed and
  not empty): that token;
- anything else -- the header repeated (whatever the values), empty, another scheme, a
  scheme without a token -- is malformed: 401, and a fast path leaves the request to the
  routes, which answer that 401.
"""

from __future__ import annotations

from collections.abc import Iterable

from eduflow.errors import Unauthorized

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
