"""Cached GET responses of the routes: the cache policy (``eduflow.cache.responses``) as
Starlette responses, with the visibility of drafts decided by the permission rule."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from eduflow.api.etag import etag_matches, if_none_match
from eduflow.cache.responses import Builder, Entry, Plan, get_or_build, response_headers, uncached
from eduflow.services.permissions import Principal, may_see_course


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
    request: Request, plan: Plan | None, build: Builder, actor: Principal | None = None
) -> CachedResponse:
    """The response of a cacheable GET: from the cache, else built and stored.

    A cached draft that ``actor`` may not see is never sent: ``build`` (the service,
    under the caller's identity) decides instead, which answers 404.
    """
    entry, hit = get_or_build(plan, build)
    if hit and not visible_to(entry, actor):
        entry, hit = uncached(plan, build), False
    return CachedResponse(request, entry, hit)
