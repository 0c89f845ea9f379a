"""Plain write POSTs answered in front of the application: the write twin of ``cached``.

Two writes come by the thousand: enrollment POSTs when a popular course opens, and
progress batches from every client of every learner. The framework (middleware stack,
routing, dependency solving, response classes) adds a good part of the CPU each costs
(figures in ``bench/README.md``). A plain, well-formed one -- a JSON body of the size the
write needs, a bearer token whose state the near cache confirms, no ``Idempotency-Key``
-- needs none of it: its body is validated by the route's own model, the caller confirmed
exactly as the route's dependency does, and the write made by the service call the route
makes (``routes.enrollments.enroll_as``, ``routes.progress.record_as``), so the rules
live in one place.

Anything else goes to the application unchanged, body included, and is answered as
always: a body that does not validate (422), a path parameter out of range, a token the
cache cannot confirm (the route decides, from the database if need be), a key to honour,
a body without a length or larger than the write's.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.types import Message, Receive, Scope, Send

from eduflow.api.cached import CachedReads
from eduflow.api.context import RequestContext, log_fast_path_error
from eduflow.api.credentials import bearer_token_or_none
from eduflow.api.etag import encode
from eduflow.api.paths import ENROLL_PATH, PROGRESS_ROUTE
from eduflow.api.problems import render_exception
from eduflow.models.enrollments import EnrollmentCreate
from eduflow.models.progress import ProgressBatch
from eduflow.services.permissions import Principal

_JSON = b"application/json"
_MAX_ID = 2**31 - 1  # the routes' path parameters: ``ge=1, le=2**31 - 1``
Headers = list[tuple[bytes, bytes]]


async def _enroll(actor: Principal, payload: Any, _: int) -> tuple[int, bytes, Headers]:
    from eduflow.api.routes.enrollments import enroll_as

    enrollment = await enroll_as(actor, payload.course)
    location = b"%b%d/" % (ENROLL_PATH.encode(), enrollment.id)
    return 201, encode(enrollment), [(b"content-type", _JSON), (b"location", location)]


async def _record(actor: Principal, payload: Any, enrollment_id: int) -> tuple[int, bytes, Headers]:
    from eduflow.api.routes.progress import record_as

    result = await record_as(actor, enrollment_id, payload)
    return 200, encode(result), [(b"content-type", _JSON)]


@dataclass(frozen=True, slots=True)
class _Write:
    """One fast-pathed POST: its route template, body model and size, and its call."""

    route: str
    model: type[BaseModel]
    max_body: int  # bytes; larger bodies go the long way
    call: Callable[[Principal, Any, int], Awaitable[tuple[int, bytes, Headers]]]


# A plain enrollment is ``{"course": N}``; a batch of 100 events is about 12 KB.
_ENROLL = _Write(ENROLL_PATH, EnrollmentCreate, 256, _enroll)
_PROGRESS = _Write(PROGRESS_ROUTE, ProgressBatch, 32 * 1024, _record)
_PROGRESS_PATH = re.compile(
    re.escape(PROGRESS_ROUTE).replace(re.escape("{enrollment_id}"), "([1-9][0-9]{0,9})")
)


def _write_of(path: str) -> tuple[_Write, int] | None:
    """The fast-pathed write at ``path`` and its path parameter (0 when it has none)."""
    if path == ENROLL_PATH:
        return _ENROLL, 0
    match = _PROGRESS_PATH.fullmatch(path)
    if match is not None and (enrollment_id := int(match[1])) <= _MAX_ID:
        return _PROGRESS, enrollment_id
    return None


def _plain(headers: list[tuple[bytes, bytes]], max_body: int) -> str | None:
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
    return token if json and 0 < length <= max_body else None


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


async def answer_write(
    cached_reads: CachedReads, scope: Scope, receive: Receive, send: Send
) -> Receive | None:
    """Answer a plain fast-pathed POST (None), or give back the ``receive`` with which the
    application is to answer it (what was read of the body is replayed)."""
    found = _write_of(scope["path"])
    if found is None:
        return receive
    write, param = found
    token = _plain(scope["headers"], write.max_body)
    if token is None:
        return receive
    body, messages = await _read_body(receive)
    if body is None:
        return _replay(messages, receive)
    actor = None
    try:
        payload = write.model.model_validate_json(body)
        actor = await cached_reads.principal(token)
    except ValidationError:  # the route says what is wrong with it (422)
        pass
    except Exception as exc:  # a bug here must not cost the request: the route answers
        log_fast_path_error(scope, exc)
    if actor is None:
        return _replay(messages, receive)

    context = RequestContext.of(scope)
    context.bind()  # log lines and outbox rows carry the request id
    state: dict[str, Any] = scope["state"]
    state["user_id"] = actor.id
    headers: Headers
    try:
        status, content, headers = await write.call(actor, payload, param)
    except Exception as exc:  # rendered as the routes' handlers would (4xx, 500/503)
        problem = render_exception(scope, exc)
        status, content, headers = problem.status, problem.body, [*problem.headers]
    headers += [(b"content-length", b"%d" % len(content)), *context.starting(status, write.route)]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})
    context.finish(status, route=write.route)
    return None
