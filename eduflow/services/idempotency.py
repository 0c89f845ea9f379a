"""Idempotency keys (IETF httpapi ``Idempotency-Key`` draft) for the creating POST routes.

One store key per (user, route, key) holds either an in-flight marker or the stored first
response, each with the fingerprint of the request body:

* the first request takes the key with one ``SET NX PX`` (the in-flight marker, which
  expires by itself if the process dies), runs, and after its commit replaces the marker
  with ``{status, body, headers}`` for ``EDUFLOW_IDEMPOTENCY_TTL`` (24 h);
* a later request with the same body gets that response replayed; with another body a
  422; while the first is still running a 409;
* a failure that is not the client's (5xx, crash) releases the key so a retry can run.

The store is Redis when configured (shared by every server process), else in-process. If
Redis is configured but does not answer, requests carrying a key fail closed with 503:
running them without the lock could create a duplicate.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson

from eduflow.cache.stores import StoreUnavailable, get_store, key
from eduflow.config import get_settings
from eduflow.errors import BadRequest, Conflict, Invalid, Unavailable

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
IN_FLIGHT_TTL = 60.0  # seconds; longer than any request may run (statement timeout: 5 s)
_STATE_IN_FLIGHT = "in-flight"
_STATE_DONE = "done"


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """The first response to a key, replayed to later requests with the same body."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def validate_key(raw: str) -> str:
    """400 unless the header is 1-255 visible ASCII characters."""
    value = raw.strip()
    if not value or len(value) > MAX_KEY_LENGTH or not value.isascii() or not value.isprintable():
        raise BadRequest(
            f"{HEADER} must be 1-{MAX_KEY_LENGTH} visible ASCII characters",
            errors=[{"field": HEADER, "message": "invalid idempotency key"}],
        )
    return value


def fingerprint(body: bytes) -> str:
    """A digest of the request body, insensitive to JSON whitespace and key order."""
    try:
        canonical = orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS)
    except orjson.JSONDecodeError:
        canonical = body
    return hashlib.sha256(canonical).hexdigest()


def store_key(user_id: int, route: str, idempotency_key: str) -> str:
    """The store key of one user's key on one route (hashed: keys are client input)."""
    digest = hashlib.sha256(f"{route}\n{idempotency_key}".encode()).hexdigest()
    return key("idem", user_id, digest)


def _read(raw: bytes) -> dict[str, Any]:
    data = orjson.loads(raw)
    assert isinstance(data, dict)
    return data


class IdempotentRequest:
    """One request carrying an ``Idempotency-Key``: ``begin()``, run, ``complete()``/``abort()``."""

    def __init__(self, user_id: int, route: str, idempotency_key: str, body: bytes) -> None:
        self.key = store_key(user_id, route, validate_key(idempotency_key))
        self.fingerprint = fingerprint(body)
        self.token = uuid.uuid4().hex
        self.locked = False

    def begin(self) -> StoredResponse | None:
        """Take the key (None: go ahead) or return the stored response to replay.

        422 when the key was used with another body, 409 while the first request runs,
        503 when the store does not answer.
        """
        marker = orjson.dumps(
            {"state": _STATE_IN_FLIGHT, "fp": self.fingerprint, "token": self.token}
        )
        try:
            if get_store().set_nx(self.key, marker, IN_FLIGHT_TTL):
                self.locked = True
                return None
            raw = get_store().get(self.key)
        except StoreUnavailable as exc:
            raise _unavailable() from exc
        if raw is None:  # expired between the two calls: one more try
            return self.begin()
        data = _read(raw)
        if data.get("fp") != self.fingerprint:
            raise Invalid(
                f"This {HEADER} was already used with a different request body",
                slug="idempotency-key-reused",
                title="Idempotency key reused",
                errors=[{"field": HEADER, "message": "already used with a different body"}],
            )
        if data.get("state") != _STATE_DONE:
            raise Conflict(
                f"A request with this {HEADER} is still being processed; retry shortly",
                slug="idempotency-key-in-flight",
                title="Request in flight",
                headers={"Retry-After": "1"},
            )
        return StoredResponse(
            status=int(data["status"]),
            body=str(data["body"]).encode(),
            headers=dict(data.get("headers") or {}),
        )

    def complete(self, response: StoredResponse) -> None:
        """Store the response (after the commit) for replays; best effort once committed."""
        if not self.locked:
            return
        value = orjson.dumps(
            {
                "state": _STATE_DONE,
                "fp": self.fingerprint,
                "status": response.status,
                "body": response.body.decode(),
                "headers": response.headers,
            }
        )
        try:
            get_store().set(self.key, value, get_settings().idempotency_ttl)
        except StoreUnavailable:
            # The change is committed; the marker expires and a retry would run again.
            # Nothing better is possible once the store is gone.
            from eduflow.logging import get_logger

            get_logger("eduflow.idempotency").warning("idempotency_store_failed", key=self.key)
        self.locked = False

    def abort(self) -> None:
        """Release the key after a failure that a retry may fix."""
        if not self.locked:
            return
        self.locked = False
        try:
            raw = get_store().get(self.key)
            if raw is not None and _read(raw).get("token") == self.token:
                get_store().delete(self.key)
        except StoreUnavailable:
            pass  # the in-flight marker expires by itself


def _unavailable() -> Unavailable:
    return Unavailable(
        f"Requests with an {HEADER} cannot be processed while the key store is down; retry shortly"
    )
