"""The ``Idempotency-Key`` dependency of the creating POST routes.

Declare it *before* ``SessionDep`` so it is entered first and left last: the response is
stored only after the request's transaction has committed. A handler starts with
``if idem.replay: return idem.replay`` and ends with ``return idem.respond(...)``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import Depends, Header, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from eduflow.api.context import request_id_of
from eduflow.api.deps import CurrentUser
from eduflow.api.problems import PROBLEM_MEDIA_TYPE, renamed_problem, render_error
from eduflow.errors import EduFlowError
from eduflow.services.idempotency import IdempotentRequest, StoredResponse
from eduflow.services.permissions import Principal

_KEPT_HEADERS = ("location",)


class IdempotencyScope:
    """What a handler sees: a replayed response, or a way to respond and be remembered."""

    def __init__(
        self, request: Request, actor: Principal, pending: IdempotentRequest | None
    ) -> None:
        self.request = request
        self.actor = actor  # the authenticated caller: a handler need not ask for it again
        self.pending = pending
        self.replay: Response | None = None
        self.response: StoredResponse | None = None
        if pending is not None:
            stored = pending.begin()
            if stored is not None:
                self.replay = _as_response(_renamed(stored, request), replayed=True)

    def respond(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> Response:
        """The JSON response of the first request, remembered for replays after the commit."""
        self.response = StoredResponse(status, body, dict(headers or {}))
        return _as_response(self.response, replayed=False)

    def fail(self, exc: BaseException) -> None:
        """Remember a client error as the key's response; release the key after any other."""
        if self.pending is None:
            return
        if isinstance(exc, EduFlowError) and exc.status < 500:
            problem = render_error(self.request.scope, exc)
            self.pending.complete(StoredResponse(exc.status, problem.body))
        else:
            self.pending.abort()

    def finish(self) -> None:
        """After the commit: store the response for replays."""
        if self.pending is None:
            return
        if self.response is not None:
            self.pending.complete(self.response)
        else:
            self.pending.abort()


def _renamed(stored: StoredResponse, request: Request) -> StoredResponse:
    # A replayed problem names the request it answers, so logs and clients correlate.
    if stored.status < 400:
        return stored
    body = renamed_problem(stored.body, request_id_of(request.scope))
    return StoredResponse(stored.status, body, stored.headers)


def _as_response(stored: StoredResponse, *, replayed: bool) -> Response:
    headers = {k: v for k, v in stored.headers.items() if k.lower() in _KEPT_HEADERS}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    media_type = PROBLEM_MEDIA_TYPE if stored.status >= 400 else "application/json"
    return Response(stored.body, status_code=stored.status, media_type=media_type, headers=headers)


async def idempotency(
    request: Request,
    actor: CurrentUser,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            max_length=255,
            # What services.idempotency.validate_key admits (else a 400): visible ASCII.
            json_schema_extra={"pattern": r"^[ -~]*[!-~][ -~]*$"},
            description="Optional: 1-255 visible ASCII characters. The same key and body "
            "replay the first response for 24 h; the same key with another body is a 422.",
        ),
    ] = None,
) -> AsyncIterator[IdempotencyScope]:
    """Lock the key, replay a stored response, or store this one after the commit.

    Async, with the store's (blocking) calls in the thread pool only when a key is sent:
    a request without one costs no thread hop here.
    """
    if idempotency_key is None:
        yield IdempotencyScope(request, actor, None)
        return
    route = f"{request.method} {request.url.path}"
    body = await request.body()  # already read and cached by FastAPI for the body parameter
    pending = IdempotentRequest(actor.id, route, idempotency_key, body)
    scope = await run_in_threadpool(IdempotencyScope, request, actor, pending)
    try:
        yield scope
    except BaseException as exc:
        with anyio.CancelScope(shield=True):
            await run_in_threadpool(scope.fail, exc)
        raise
    await run_in_threadpool(scope.finish)


IdempotencyDep = Annotated[IdempotencyScope, Depends(idempotency, scope="function")]
