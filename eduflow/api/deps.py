"""FastAPI dependencies: the request's session, the caller, roles and pagination."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import URL

from eduflow import db_routing
from eduflow.api.credentials import bearer_token
from eduflow.api.openapi import BEARER, OPTIONAL_BEARER
from eduflow.config import get_settings
from eduflow.db import session_scope
from eduflow.errors import Invalid
from eduflow.models.users import Role
from eduflow.services import paging, permissions
from eduflow.services.paging import Page, PageRequest
from eduflow.services.permissions import Principal


def get_session() -> Iterator[Session]:
    """One transaction per request: commit when the handler returns, roll back if it raises."""
    with session_scope() as session:
        yield session


# scope="function": commit happens before the response is sent, so a failed commit
# becomes the response (409/503) instead of a lost write behind a 2xx.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


# Declares the bearer scheme in OpenAPI (Swagger's "Authorize"); parsing stays ours so a
# malformed header is a 401 problem rather than silently anonymous.
bearer_scheme = HTTPBearer(
    scheme_name=BEARER,
    auto_error=False,
    bearerFormat="JWT",
    description="Access token from /api/v1/auth/login/",
)
# The same scheme where anonymous calls are served too; api.openapi declares those
# operations' bearer auth optional and drops this name from the document.
optional_bearer_scheme = HTTPBearer(auto_error=False, scheme_name=OPTIONAL_BEARER)


async def get_optional_principal(
    request: Request,
    _credentials: Annotated[
        HTTPAuthorizationCredentials | None, Depends(optional_bearer_scheme)
    ] = None,
) -> Principal | None:
    """The caller when a valid access token is sent, None when no token is sent; 401 if bad.

    Async: the token state usually comes from the cache fast path's near cache (no I/O,
    no thread hop); anything it cannot confirm goes through the full check in a thread.
    """
    token = bearer_token(request.scope["headers"])
    if token is None:
        return None
    cached_reads = getattr(request.app, "cached_reads", None)
    principal: Principal | None = None
    if cached_reads is not None:
        principal = await cached_reads.principal(token)
    if principal is None:
        from eduflow.services.auth_state import principal_from_access_token

        principal = await run_in_threadpool(principal_from_access_token, token)
    request.state.user_id = principal.id
    db_routing.act_as(principal.id)  # its catalogue writes are kept for its next reads
    return principal


async def get_principal(
    principal: Annotated[Principal | None, Depends(get_optional_principal)],
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)] = None,
) -> Principal:
    """The authenticated caller (401 otherwise); async: no I/O, so no thread hop."""
    return permissions.require_authenticated(principal)


OptionalUser = Annotated[Principal | None, Depends(get_optional_principal)]
CurrentUser = Annotated[Principal, Depends(get_principal)]


def require_role(*roles: Role) -> Any:
    """A dependency that admits the given roles (and admins)."""

    async def _check(principal: CurrentUser) -> Principal:
        return permissions.require_role(principal, *roles)

    return Depends(_check)


AdminUser = Annotated[Principal, require_role(Role.admin)]


def client_address(request: Request) -> str:
    """The client's address: behind a trusted proxy (``EDUFLOW_FORWARDED_ALLOW_IPS``) the
    server has already taken it from ``X-Forwarded-For``; else the peer's address."""
    return request.client.host if request.client else "unknown"


@dataclass(frozen=True, slots=True)
class PageParams:
    """``?page=`` (from 1) and ``?page_size=`` (default 20, max 100)."""

    page: int
    page_size: int

    @property
    def offset(self) -> int:
        """Rows to skip."""
        return (self.page - 1) * self.page_size


def get_page_params(
    page: Annotated[int, Query(ge=1, le=1_000_000, description="Page number, from 1.")] = 1,
    page_size: Annotated[int, Query(ge=1, le=100, description="Items per page (max 100).")] = 20,
) -> PageParams:
    """Validated pagination parameters."""
    return PageParams(page=page, page_size=page_size)


PageDep = Annotated[PageParams, Depends(get_page_params)]


@dataclass(frozen=True, slots=True)
class ListingParams(PageParams):
    """``PageParams`` plus ``?cursor=`` (keyset pages, see ``services.paging``)."""

    cursor: str | None = None

    @property
    def request(self) -> PageRequest:
        """What the service needs to know about the page."""
        return PageRequest(offset=self.offset, limit=self.page_size, cursor=self.cursor)


def get_listing_params(
    page: Annotated[
        int,
        Query(
            ge=1,
            le=1_000_000,
            description="Page number, from 1; page x page_size may not pass the first 100,000 "
            "items (400 page-too-deep: follow the `next` links, which carry cursors).",
        ),
    ] = 1,
    page_size: Annotated[int, Query(ge=1, le=100, description="Items per page (max 100).")] = 20,
    cursor: Annotated[
        str | None,
        Query(
            max_length=500,
            description="Continue after the previous page (the `next` link); replaces page.",
        ),
    ] = None,
) -> ListingParams:
    """Validated pagination parameters of a listing with cursors."""
    if cursor is not None and page != 1:
        raise Invalid.field("cursor", "give either page or cursor, not both")
    return ListingParams(page=page, page_size=page_size, cursor=cursor)


ListingDep = Annotated[ListingParams, Depends(get_listing_params)]


def public_url(request: Request) -> URL:
    """The request's URL on EDUFLOW_PUBLIC_BASE_URL: the links of a page never depend on
    the Host header, so one cached page serves every client (and a forged Host cannot
    put its links in it)."""
    query = request.url.query
    base = get_settings().public_base_url.rstrip("/")
    return URL(f"{base}{request.url.path}" + (f"?{query}" if query else ""))


def listing_body(request: Request, params: ListingParams, page: Page[Any]) -> dict[str, Any]:
    """``{count, count_exact, next, previous, results}``: ``next`` is a ``?page=`` link
    while it stays within the offset limit, else (and on cursor pages) a ``?cursor=``
    link; cursor pages have no ``previous``."""
    here = public_url(request)
    nxt = prev = None
    if page.next_cursor is not None:
        if params.cursor is None and params.page * params.page_size <= paging.MAX_OFFSET:
            nxt = str(here.include_query_params(page=params.page + 1))
        else:
            url = here.remove_query_params("page")
            nxt = str(url.include_query_params(cursor=page.next_cursor))
    if params.cursor is None and params.page > 1:
        last_page = max(1, -(-page.count // params.page_size))
        previous_page = min(params.page - 1, last_page) if page.count_exact else params.page - 1
        prev = str(here.include_query_params(page=previous_page))
    return {
        "count": page.count,
        "count_exact": page.count_exact,
        "next": nxt,
        "previous": prev,
        "results": page.results,
    }


def page_body(
    request: Request, params: PageParams, count: int, results: list[Any]
) -> dict[str, Any]:
    """``{count, next, previous, results}`` with absolute next/previous URLs."""
    here = public_url(request)
    last_page = max(1, -(-count // params.page_size))
    nxt = str(here.include_query_params(page=params.page + 1)) if params.page < last_page else None
    prev = None
    if params.page > 1:
        prev = str(here.include_query_params(page=min(params.page - 1, last_page)))
    return {"count": count, "next": nxt, "previous": prev, "results": results}
