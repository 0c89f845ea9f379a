"""JSON responses with an ETag computed from the encoded bytes, and ``If-None-Match`` -> 304."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from pydantic import BaseModel
from starlette.responses import Response
from starlette.types import Scope

from eduflow.cache.responses import etag_of


def if_none_match(scope: Scope) -> bytes | None:
    """The raw ``If-None-Match`` header of a request."""
    for name, value in scope["headers"]:
        if name == b"if-none-match":
            return bytes(value)
    return None


def etag_matches(header: bytes | None, etag: bytes) -> bool:
    """The one ETag matcher: ``If-None-Match`` names ``etag`` (weak comparison) or is ``*``."""
    if not header:
        return False
    for candidate in header.split(b","):
        candidate = candidate.strip()
        if candidate == b"*" or candidate.removeprefix(b"W/") == etag:
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
    if etag_matches(if_none_match(request.scope), tag.encode()):
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
