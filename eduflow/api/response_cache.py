"""Cached GET responses of the catalogue routes: the cache policy
(``eduflow.cache.responses``) as Starlette responses, with the visibility of drafts decided
by the permission rule, built from the read replica when ``eduflow.db_routing`` allows."""

from __future__ import annotations

from collections.abc import Callable

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import Response

from eduflow import db_routing
from eduflow.api.etag import etag_matches, if_none_match
from eduflow.cache.responses import Entry, Plan, get_or_build, response_headers, uncached
from eduflow.services.permissions import Principal, may_see_course

# Reads ``(body, meta)`` of a catalogue response in the session it is given.
Reader = Callable[[Session], tuple[bytes, bytes]]


def visible_to(entry: Entry, actor: Principal | None) -> bool:
    """Whether a cached (course) representation may be shown to ``actor`` without asking
    the database: the permission rule on what the entry notes of the course."""
    owner = entry.draft_owner
    return owner is None or may_see_course(actor, False, owner)


class CachedResponse(Response):
    """A 200 with the entry's bytes, or a 304 when the client already has them."""

    def __init__(self, request: Request, entry: Entry, hit: bool) -> None:
        not_modified = etag_matches(if_none_match(request.scope), entry.etag)
        super().__init__(
            b"" if not_modified else entry.body, status_code=304 if not_modified else 200
        )
        self.raw_headers = response_headers(entry, hit, with_body=not not_modified)


def cached_response(
    request: Request, plan: Plan | None, read: Reader, actor: Principal | None = None
) -> CachedResponse:
    """The response of a cacheable catalogue GET: from the cache, else built and stored.

    ``read`` runs on the replica when it has replayed the writes the entry and ``actor``
    must see, else on the primary (``db_routing.read``). A cached draft that ``actor`` may
    not see is never sent: ``read`` (the service, under the caller's identity) decides
    instead, which answers 404.
    """
    reader = actor.id if actor is not None else None

    def build(since: int | None) -> tuple[bytes, bytes]:
        return db_routing.read(read, reader=reader, since=since)

    entry, hit = get_or_build(plan, build)
    if hit and not visible_to(entry, actor):
        entry, hit = uncached(plan, build), False
    return CachedResponse(request, entry, hit)
