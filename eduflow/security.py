"""Password hashing (bcrypt) and JWT encoding/decoding (PyJWT, HS256)."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from functools import lru_cache
from typing import Any, Literal

import bcrypt
import jwt

from eduflow.config import get_settings

ALGORITHM = "HS256"
TokenType = Literal["access", "refresh"]
REQUIRED_CLAIMS = ["exp", "iat", "sub", "type", "jti", "sid"]
MAX_TOKEN_CHARS = 4096


# bcrypt runs in these threads, at a lower CPU priority (Linux applies nice per thread):
# a burst of logins then takes the CPU the request loops leave over instead of starving
# them (cached reads keep their latency while many clients log in at once).
HASHING_THREADS = 2
HASHING_NICE = 19


def _lower_priority() -> None:
    import os

    with suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASHING_NICE)


@lru_cache(maxsize=1)
def _hashing_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(
        HASHING_THREADS, thread_name_prefix="eduflow-bcrypt", initializer=_lower_priority
    )


def hash_password(password: str, rounds: int | None = None) -> str:
    """bcrypt hash of ``password`` (callers enforce the 72-byte bound first)."""
    salt = bcrypt.gensalt(rounds or get_settings().bcrypt_rounds)
    return _hashing_pool().submit(bcrypt.hashpw, password.encode(), salt).result().decode()


def verify_password(password: str, password_hash: str) -> bool:
    """True when ``password`` matches; never raises on malformed input."""
    try:
        return (
            _hashing_pool()
            .submit(bcrypt.checkpw, password.encode(), password_hash.encode())
            .result()
        )
    except ValueError:
        return False


@lru_cache(maxsize=4)
def _dummy_hash(rounds: int) -> str:
    return hash_password("dummy-password-for-timing", rounds)


def burn_password_check(password: str) -> None:
    """Spend the same time as a real check, so unknown users cannot be told apart by timing."""
    verify_password(password, _dummy_hash(get_settings().bcrypt_rounds))


def encode_token(
    user_id: int, token_type: TokenType, session_id: str, ttl: int, **extra: Any
) -> tuple[str, str]:
    """A signed token and its ``jti``."""
    now = int(time.time())
    jti = uuid.uuid4().hex
    claims = {
        "sub": str(user_id),
        "type": token_type,
        "sid": session_id,
        "jti": jti,
        "iat": now,
        "exp": now + ttl,
        **extra,
    }
    token = jwt.encode(claims, get_settings().resolved_secret_key(), algorithm=ALGORITHM)
    return token, jti


def decode_token(token: str, expected_type: TokenType) -> dict[str, Any]:
    """Verified claims of ``token``; raises ``jwt.InvalidTokenError`` on any defect.

    The algorithm list is explicit (no ``alg: none``, no key confusion) and every claim
    the server relies on is required.
    """
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS:
        raise jwt.InvalidTokenError("malformed token")
    claims: dict[str, Any] = jwt.decode(
        token,
        get_settings().resolved_secret_key(),
        algorithms=[ALGORITHM],
        options={"require": REQUIRED_CLAIMS},
    )
    if claims.get("type") != expected_type:
        raise jwt.InvalidTokenError("wrong token type")
    if not isinstance(claims.get("sid"), str) or not str(claims.get("sub", "")).isdigit():
        raise jwt.InvalidTokenError("malformed claims")
    return claims
