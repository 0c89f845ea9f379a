"""Property-based run of the auth, users and health routes against the app's own OpenAPI:
no 5xx, and every response conforms to the documented schema and media type."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
)

from eduflow.models.users import Role
from tests.factories import make_user

ROUTES = r"^/api/v1/(auth|users)/|^/(healthz|readyz)$"
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    content_type_conformance,
    response_headers_conformance,
]


@pytest.fixture
def admin_headers(session: Any, login: Any) -> dict[str, str]:
    """An admin's token, so admin-only routes are exercised beyond their 401/403."""
    make_user(session, Role.admin, username="schema_admin")
    session.commit()
    return dict(login("schema_admin"))


def _app() -> Any:
    from eduflow.api.app import create_app

    return create_app()


# The OpenAPI document served by the app itself, narrowed to this area's routes; cases are
# sent to the same app in-process (ASGI), against the real PostgreSQL and Redis.
schema = schemathesis.openapi.from_asgi("/api/schema/", _app()).include(path_regex=ROUTES)


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_auth_routes_conform_to_their_schema(case: Any, admin_headers: dict[str, str]) -> None:
    headers = None if case.path.startswith("/api/v1/auth/register") else admin_headers
    case.call_and_validate(headers=headers, checks=CHECKS)
