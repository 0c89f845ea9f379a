"""Property-based run of the courses, lessons and enrollments routes against the app's own
OpenAPI: no 5xx, and every response conforms to the documented schema and media type."""

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
    status_code_conformance,
)

from eduflow.models.users import Role
from eduflow.services.auth import issue_tokens
from tests.factories import make_course, make_enrollment, make_lesson, make_user

ROUTES = r"^/api/v1/(courses|lessons|enrollments)/"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    response_schema_conformance,
    content_type_conformance,
    response_headers_conformance,
]


@pytest.fixture
def tokens(session: Any) -> dict[str, dict[str, str]]:
    """An admin and a student with a few objects (ids 1-3) for the generated ids to hit."""
    admin = make_user(session, Role.admin, username="catalog_admin")
    student = make_user(session, Role.student, username="catalog_student")
    for price in (0, "12.50", 3):
        course = make_course(session, owner=admin, price=price, capacity=5)
        make_lesson(session, course)
        make_enrollment(session, student, course, status="pending")
    headers = {
        name: {"Authorization": f"Bearer {issue_tokens(session, user).access}"}
        for name, user in (("admin", admin), ("student", student))
    }
    session.commit()
    return headers


def _app() -> Any:
    from eduflow.api.app import create_app

    return create_app()


schema = schemathesis.openapi.from_asgi("/api/schema/", _app()).include(path_regex=ROUTES)


@schema.parametrize()
@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_catalog_routes_conform_to_their_schema(
    case: Any, tokens: dict[str, dict[str, str]]
) -> None:
    role = "student" if case.path == "/api/v1/enrollments/" and case.method == "POST" else "admin"
    case.call_and_validate(headers=tokens[role], checks=CHECKS)
