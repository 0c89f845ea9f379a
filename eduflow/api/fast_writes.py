"""Enrollment POSTs answered in front of the application: the write twin of ``cached``.

When a popular course opens, enrollment POSTs come by the thousand, and the framework
(middleware stack, routing, dependency solving, response classes) adds a good part of the
CPU each one costs (figures in ``bench/README.md``). A plain, well-formed one -- a small
JSON body, a bearer token whose state the near cache confirms, no ``Idempotency-Key`` --
needs none of it: its body is validated by the route's own model, the caller confirmed
exactly as the route's dependency does, and the enrollment made by the route's own call
(``routes.enrollments.enroll_as``), so the rules live in one place.

Anything else goes to the application unchanged, body included, and is answered as
always: a body that does not validate (422), a token the cache cannot confirm (the route
decides, from the database if need be), a key to honour, a body without a length or
larger than a plain enrollment's.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from starlette.types import Message, Receive, Scope, Send

from eduflow.api.cached import CachedReads
from eduflow.api.context import RequestContext, log_fast_path_error
from eduflow.api.credentials import bearer_token_or_none
from eduflow.api.etag import encode
from eduflow.api.paths import ENROLL_PATH
from eduflow.api.problems import render_exception
from eduflow.models.enrollments import EnrollmentCreate

_MAX_BODY = 256  # bytes: a plain enrollment is ``{"course": N}``; larger ones go the long way
_JSON = b"application/json"


def _plain(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The bearer token of a request this path may answer, from its headers alone."""
    readable, token = bearer_token_or_none(headers)
    if not readable or token is None:
        return None  # anonymous or malformed: the route says what it is
    length = -1
    json = False
    for name, value in headers:
        if name == b"content-type":
            json = value.partition(b";")[0].strip().lower() == _JSON
        elif name == b"content-length":
            length = int(value) if value.isdigit() else -1
        elif name in (b"idempotency-key", b"transfer-encoding"):
            return None
    return token if json and 0 < length <= _MAX_BODY else None


async def _read_body(receive: Receive) -> tuple[bytes | None, list[Message]]:
    """The whole body (None when the client went away first) and the messages it came in."""
    messages: list[Message] = []
    chunks: list[bytes] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return None, messages
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), messages


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """``receive`` for the application: the messages already read first, then the rest."""
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed


async def answer_enrollment(
    cached_reads: CachedReads, scope: Scope, receive: Receive, send: Send
) -> Receive | None:
    """Answer a plain enrollment POST (None), or give back the ``receive`` with which the
    application is to answer it (what was read of the body is replayed)."""
    token = _plain(scope["headers"])
    if token is None:
        return receive
    body, messages = await _read_body(receive)
    if body is None:
        return _replay(messages, receive)
    actor = None
    try:
        payload = EnrollmentCreate.model_validate_json(body)
        actor = await cached_reads.principal(token)
    except ValidationError:  # the route says what is wrong with it (422)
        pass
    except Exception as exc:  # a bug here must not cost the request: the route answers
        log_fast_path_error(scope, exc)
    if actor is None:
        return _replay(messages, receive)

    from eduflow.api.routes.enrollments import enroll_as

    context = RequestContext.of(scope)
    context.bind()  # log lines and the outbox row carry the request id
    state: dict[str, Any] = scope["state"]
    state["user_id"] = actor.id
    headers: list[tuple[bytes, bytes]]
    try:
        enrollment = await enroll_as(actor, payload.course)
        status, content = 201, encode(enrollment)
        headers = [
            (b"content-type", _JSON),
            (b"location", b"%b%d/" % (ENROLL_PATH.encode(), enrollment.id)),
        ]
    except Exception as exc:  # rendered as the routes' handlers would (4xx, 500/503)
        problem = render_exception(scope, exc)
        status, content, headers = problem.status, problem.body, [*problem.headers]
    headers += [(b"content-length", b"%d" % len(content)), *context.starting(status, ENROLL_PATH)]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})
    context.finish(status, route=ENROLL_PATH)
    return None
