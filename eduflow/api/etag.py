"""JSON responses with an ETag computed from the encoded bytes, and ``If-None-Match`` -> 304."""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import Request
from pydantic import BaseModel
from starlette.responses import Response


def etag_of(body: bytes) -> str:
    """A strong ETag: the representation's bytes decide it, so any visible change changes it."""
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def matches(if_none_match: str | None, etag: str) -> bool:
    """True when an ``If-None-Match`` header names ``etag`` (weak comparison, or ``*``)."""
    if not if_none_match:
        return False
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == etag:
            return True
    return False


def encode(payload: BaseModel | bytes) -> bytes:
    """The JSON bytes of ``payload``."""
    return payload if isinstance(payload, bytes) else payload.model_dump_json().encode()


def json_response(payload: BaseModel | bytes, status_code: int = 200) -> Response:
    """``payload`` as a JSON response, encoded once (no second validation by FastAPI)."""
    return Response(encode(payload), status_code=status_code, media_type="application/json")


def etag_response(request: Request, payload: BaseModel | bytes) -> Response:
    """200 with the JSON body and its ETag, or 304 (no body) when the client has it already."""
    body = encode(payload)
    tag = etag_of(body)
    # The representation depends on who asks (drafts, lesson content).
    headers = {"ETag": tag, "Vary": "Authorization"}
    if matches(request.headers.get("if-none-match"), tag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


# OpenAPI ``responses=`` entries of a GET that sends an ETag.
ETAG_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "headers": {
            "ETag": {"schema": {"type": "string"}, "description": "Tag of the representation."}
        }
    },
    304: {"description": "Not modified: If-None-Match named the current ETag (no body)."},
}
