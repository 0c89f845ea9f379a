"""Schemathesis hooks of the full run (tests/api/test_schemathesis_all.py), loaded by its
``schemathesis run`` process through ``SCHEMATHESIS_HOOKS``.

Who calls what: the admin by default, the instructor who owns the seeded courses for
catalogue writes, the enrolled student for the student's own actions, and a throwaway
student (created per case, password ``analytical-42``, the schema's example) for the calls
that end their caller's own login or account. The only cases left out: the run's admin
changing or deleting its own account or its two fellow actors' (``PATCH``/``DELETE
/users/{id}/``), which would end the run's own logins: such a case is sent by a throwaway
student (a 403).
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

import schemathesis

ACTORS: dict[str, Any] = json.loads(os.environ["EDUFLOW_SCHEMATHESIS_ACTORS"])
THROWAWAY_PASSWORD = "analytical-42"

INSTRUCTOR_ROUTES = (
    ("POST", "/api/v1/courses/"),
    ("PUT", "/api/v1/courses/{course_id}/"),
    ("PATCH", "/api/v1/courses/{course_id}/"),
    ("DELETE", "/api/v1/courses/{course_id}/"),
    ("POST", "/api/v1/lessons/"),
    ("PUT", "/api/v1/lessons/{lesson_id}/"),
    ("PATCH", "/api/v1/lessons/{lesson_id}/"),
    ("DELETE", "/api/v1/lessons/{lesson_id}/"),
    ("POST", "/api/v1/enrollments/{enrollment_id}/confirm/"),
)
STUDENT_ROUTES = (
    ("POST", "/api/v1/enrollments/"),
    ("DELETE", "/api/v1/enrollments/{enrollment_id}/"),
    ("POST", "/api/v1/enrollments/{enrollment_id}/progress/"),
    ("POST", "/api/v1/waitlist/"),
    ("DELETE", "/api/v1/waitlist/{entry_id}/"),
    ("POST", "/api/v1/waitlist/{entry_id}/accept/"),
    ("POST", "/api/v1/waitlist/{entry_id}/decline/"),
)
# These end the caller's login or account (or all its other logins).
THROWAWAY_ROUTES = (
    ("DELETE", "/api/v1/auth/me/"),
    ("POST", "/api/v1/auth/password/"),
    ("DELETE", "/api/v1/auth/sessions/{session_id}/"),
)

# The run's admin changing or deleting its own account (or its instructor's or student's)
# would end the run's own logins: those cases are sent by a throwaway student instead (and
# answered 403). Every other account, the ones the run registers included, stays a target.
ADMIN_CHANGES = (("PATCH", "/api/v1/users/{user_id}/"), ("DELETE", "/api/v1/users/{user_id}/"))


def _throwaway_token() -> str:
    """A new student account and an access token of a new login of it."""
    from eduflow.db import session_scope
    from eduflow.models.users import Role
    from eduflow.services.auth import issue_tokens
    from tests.factories import make_user

    with session_scope() as session:
        user = make_user(session, Role.student, password=THROWAWAY_PASSWORD)
        token = issue_tokens(session, user).access
        session.commit()
    return token


def token_for(method: str, path: str, path_parameters: dict[str, Any] | None = None) -> str:
    """The access token the case at ``method path`` is sent with."""
    route = (method.upper(), path)
    target = str((path_parameters or {}).get("user_id"))
    targets_actor = target in {str(actor["id"]) for actor in ACTORS.values()}
    if route in THROWAWAY_ROUTES or (route in ADMIN_CHANGES and targets_actor):
        return _throwaway_token()
    if route in INSTRUCTOR_ROUTES:
        return str(ACTORS["instructor"]["token"])
    if route in STUDENT_ROUTES:
        return str(ACTORS["student"]["token"])
    return str(ACTORS["admin"]["token"])


@schemathesis.auth(refresh_interval=None)
class EduFlowAuth:
    """A bearer token chosen per operation (see the module docstring)."""

    def get(self, case: Any, ctx: Any) -> str:
        return token_for(case.operation.method, case.operation.path, case.path_parameters)

    def set(self, case: Any, data: str, ctx: Any) -> None:
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"


# Rules of the API that JSON Schema cannot state (each is in the operation's or field's
# description). A case the generator calls valid but that breaks one of them is not valid
# data, so it is not sent as such: a positive case that breaks one is dropped. Negative
# cases are never dropped, and the rules themselves are tested in their own test files.
MAX_OFFSET_ITEMS = 100_000


def _breaks_a_rule_beyond_json_schema(case: Any) -> bool:
    query = case.query or {}
    # The cursor is an opaque value the server mints in `next` links: a generated string
    # is not one. page x page_size may not pass the first 100,000 items (then, cursors).
    if "cursor" in query:
        return True
    page, page_size = _int(query.get("page"), 1), _int(query.get("page_size"), 20)
    if page * page_size > MAX_OFFSET_ITEMS:
        return True
    body = case.body if isinstance(case.body, dict) else {}
    # Titles are trimmed before their 3-character minimum, and what counts as whitespace
    # (U+0085, ...) differs between ECMA-262 regular expressions and the server's trimming.
    title = body.get("title")
    if isinstance(title, str) and len(title.strip()) < 3:
        return True
    # A password of at most 72 characters may still pass bcrypt's 72 bytes in UTF-8; it may
    # not be the username.
    for name in ("password", "new_password"):
        value = body.get(name)
        if isinstance(value, str) and (len(value.encode()) > 72 or value == body.get("username")):
            return True
    # An email address must be deliverable: special-use domains (.test, .local, ...) are not.
    email = body.get("email")
    if isinstance(email, str):
        from email_validator import SPECIAL_USE_DOMAIN_NAMES

        domain = email.rpartition("@")[2].lower().rstrip(".")
        if any(domain == d or domain.endswith(f".{d}") for d in SPECIAL_USE_DOMAIN_NAMES):
            return True
    return False


def _int(value: Any, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except (TypeError, ValueError):
        return default


def _is_positive(case: Any) -> bool:
    meta = getattr(case, "meta", None)
    return meta is None or meta.generation.mode.is_positive


@schemathesis.hook
def filter_case(context: Any, case: Any) -> bool:
    """Drop the positive cases that break a rule beyond JSON Schema (see above)."""
    return not (_is_positive(case) and _breaks_a_rule_beyond_json_schema(case))


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    """A valid ``Idempotency-Key`` made unique to its case.

    Which keys were used before is state: the same key with another body is a 422 by
    design (the IETF Idempotency-Key draft requires it), whatever the document says of the
    key's form. Replays with one key are tested in tests/api/test_idempotency.py.
    """
    headers = case.headers or {}
    key = headers.get("Idempotency-Key")
    if isinstance(key, str) and _is_positive(case) and key.strip():
        headers["Idempotency-Key"] = f"{key.strip()[:200]}-{uuid.uuid4().hex}"
    return case
