"""The EduFlowError family: each error knows its problem type, HTTP status and CLI exit code."""

from __future__ import annotations

from typing import Any, ClassVar

PROBLEM_BASE = "https://eduflow.dev/problems/"


class EduFlowError(Exception):
    """Base of every expected failure; services raise these, front doors render them."""

    status: ClassVar[int] = 400
    slug: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad request"
    exit_code: ClassVar[int] = 1

    def __init__(
        self,
        detail: str | None = None,
        *,
        slug: str | None = None,
        title: str | None = None,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        extensions: dict[str, Any] | None = None,
    ) -> None:
        self.detail = detail or self.title
        self.extensions = extensions or {}
        self.problem_slug = slug or self.slug
        self.problem_title = title or self.title
        self.errors = errors
        self.headers = headers or {}
        super().__init__(self.detail)

    @property
    def type_uri(self) -> str:
        """The RFC 9457 ``type`` of this problem."""
        return PROBLEM_BASE + self.problem_slug


class Invalid(EduFlowError):
    """Input that breaks a rule (422)."""

    status = 422
    slug = "validation-error"
    title = "Validation error"

    @classmethod
    def field(cls, field: str, message: str) -> Invalid:
        """One invalid field, reported in ``errors[]``."""
        return cls(f"{field}: {message}", errors=[{"field": field, "message": message}])


class BadRequest(EduFlowError):
    """A malformed request (400)."""


class Unauthorized(EduFlowError):
    """Missing or bad credentials (401)."""

    status = 401
    slug = "unauthorized"
    title = "Authentication required"

    def __init__(self, detail: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(detail, **kwargs)


class Forbidden(EduFlowError):
    """A visible object the caller may not change (403)."""

    status = 403
    slug = "forbidden"
    title = "Forbidden"


class NotFound(EduFlowError):
    """A missing object, or one the caller may not see (404)."""

    status = 404
    slug = "not-found"
    title = "Not found"


class Conflict(EduFlowError):
    """The request conflicts with the current state (409)."""

    status = 409
    slug = "conflict"
    title = "Conflict"


class PayloadTooLarge(EduFlowError):
    """A body over the limit (413)."""

    status = 413
    slug = "payload-too-large"
    title = "Payload too large"


class Throttled(EduFlowError):
    """Too many attempts (429), with Retry-After."""

    status = 429
    slug = "throttled"
    title = "Too many requests"

    def __init__(self, retry_after: int, detail: str | None = None) -> None:
        self.retry_after = max(1, int(retry_after))
        super().__init__(
            detail or f"Too many attempts; retry in {self.retry_after} s",
            headers={"Retry-After": str(self.retry_after)},
        )


class Unavailable(EduFlowError):
    """A backing service is down (503)."""

    status = 503
    slug = "service-unavailable"
    title = "Service unavailable"


class DatabaseMissing(Unavailable):
    """The configured database does not exist: no retry helps, someone must create it."""

    slug = "database-missing"
    title = "Database missing"
