"""The OpenAPI document tells the truth about every operation, routes added later included:
readable unique ids, described tags, bearer auth required exactly where anonymous calls are
refused, and an ``Allow`` header on 405 that lists what the path takes."""

from __future__ import annotations

import re
from typing import Any

import pytest

from eduflow.api.openapi import operation_id

METHODS = {"get", "put", "post", "delete", "patch"}


@pytest.fixture
def schema(client: Any) -> dict[str, Any]:
    return dict(client.get("/api/schema/").json())


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, op)
        for path, item in schema["paths"].items()
        for method, op in item.items()
        if method in METHODS
    ]


def test_operation_ids_are_readable_and_unique(schema: dict[str, Any]) -> None:
    ids = [op["operationId"] for _, _, op in _operations(schema)]
    assert len(ids) == len(set(ids))
    for value in ids:
        assert re.fullmatch(r"[a-z]+(-[a-z]+)*", value), value
    by_route = {(m, p): op["operationId"] for m, p, op in _operations(schema)}
    assert by_route[("get", "/api/v1/courses/")] == "courses-list"
    assert by_route[("post", "/api/v1/enrollments/")] == "enrollments-create"
    assert by_route[("get", "/api/v1/courses/{course_id}/")] == "courses-get"
    assert by_route[("patch", "/api/v1/lessons/{lesson_id}/")] == "lessons-update"
    assert by_route[("post", "/api/v1/enrollments/{enrollment_id}/confirm/")] == (
        "enrollments-confirm"
    )
    assert by_route[("post", "/api/v1/auth/login/")] == "auth-login"


def test_the_naming_rule_names_new_routes() -> None:
    paths = {"/api/v1/waitlist/", "/api/v1/waitlist/{entry_id}/", "/api/v1/auth/me/"}
    paths |= {"/api/v1/waitlist/{entry_id}/accept/", "/api/v1/certificates/{serial}/pdf/"}
    assert operation_id("/api/v1/waitlist/", "get", paths) == "waitlist-list"
    assert operation_id("/api/v1/waitlist/", "post", paths) == "waitlist-create"
    assert operation_id("/api/v1/waitlist/{entry_id}/", "delete", paths) == "waitlist-delete"
    assert operation_id("/api/v1/waitlist/{entry_id}/accept/", "post", paths) == ("waitlist-accept")
    assert operation_id("/api/v1/certificates/{serial}/pdf/", "get", paths) == ("certificates-pdf")
    assert operation_id("/api/v1/auth/me/", "patch", paths, methods=3) == "auth-me-update"
    assert operation_id("/api/v1/auth/me/", "get", paths, methods=3) == "auth-me-get"


def test_every_tag_is_described(schema: dict[str, Any]) -> None:
    used = {tag for _, _, op in _operations(schema) for tag in op.get("tags", [])}
    described = {t["name"]: t.get("description", "") for t in schema["tags"]}
    assert used == set(described)
    for tag in used:
        assert len(described[tag]) > 10, f"tag {tag!r} needs a description in api/openapi.py"


def test_declared_auth_matches_what_anonymous_callers_get(
    client: Any, schema: dict[str, Any]
) -> None:
    """Required bearer: an anonymous GET is a 401. Optional: it is served (not a 401)."""
    checked = {"required": 0, "optional": 0}
    assert "OptionalHTTPBearer" not in schema["components"]["securitySchemes"]
    for method, path, op in _operations(schema):
        security = op.get("security")
        if method != "get" or not security:
            continue
        url = re.sub(r"\{[^}]+\}", "1", path)
        status = client.get(url).status_code
        if {} in security:
            assert security == [{"HTTPBearer": []}, {}], path
            assert status != 401, f"{path} declares optional auth but refuses anonymous"
            checked["optional"] += 1
        else:
            assert security == [{"HTTPBearer": []}], path
            assert status == 401, f"{path} declares required auth but answered {status}"
            checked["required"] += 1
    assert checked["optional"] >= 4 and checked["required"] >= 3


def test_405_lists_every_method_of_the_path_in_allow(client: Any, schema: dict[str, Any]) -> None:
    for path, item in schema["paths"].items():
        taken = {m.upper() for m in item if m in METHODS}
        missing = sorted({"GET", "PUT", "POST", "DELETE", "PATCH"} - taken)
        if not missing:
            continue
        url = re.sub(r"\{[^}]+\}", "1", path)
        response = client.request(missing[0], url)
        assert response.status_code == 405, (missing[0], path, response.status_code)
        allowed = {m.strip() for m in response.headers["allow"].split(",")}
        assert taken <= allowed, (path, allowed)


def _body_schema(schema: dict[str, Any], op: dict[str, Any]) -> dict[str, Any]:
    ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    return dict(schema["components"]["schemas"][ref.rsplit("/", 1)[1]])


def _nullable(prop: dict[str, Any]) -> bool:
    return prop.get("type") == "null" or {"type": "null"} in prop.get("anyOf", [])


def test_patch_fields_are_nullable_exactly_where_null_is_accepted(
    client: Any, session: Any, schema: dict[str, Any], login: Any
) -> None:
    """Every PATCH body, routes added later included: a field the document declares
    nullable takes ``null`` (clears it), any other field refuses it with a 422 naming it."""
    from eduflow.models.users import Role
    from tests.factories import make_course, make_lesson, make_user

    make_user(session, Role.admin, username="nulls_admin")
    other = make_user(session, Role.student, username="nulls_other")
    course = make_course(session, description="Some text", capacity=9)
    lesson = make_lesson(session, course, duration_min=5)
    session.commit()
    headers = login("nulls_admin")
    ids = {"course_id": course.id, "lesson_id": lesson.id, "user_id": other.id}
    checked = 0
    for method, path, op in _operations(schema):
        if method != "patch":
            continue
        url = re.sub(r"\{([^}]+)\}", lambda m: str(ids[m.group(1)]), path)
        for name, prop in _body_schema(schema, op)["properties"].items():
            response = client.patch(url, json={name: None}, headers=headers)
            if _nullable(prop):
                assert response.status_code == 200, (path, name, response.text)
            else:
                assert response.status_code == 422, (path, name, response.text)
                assert name in {e["field"] for e in response.json()["errors"]}, response.text
            checked += 1
    assert checked >= 12
    cleared = client.get(f"/api/v1/courses/{course.id}/", headers=headers).json()
    assert cleared["description"] == "" and cleared["capacity"] is None


def test_no_validator_keywords_leak_into_the_document(schema: dict[str, Any]) -> None:
    """Constraints are JSON Schema keywords (``minimum``), never pydantic's (``ge``), which
    a client or a test generator would silently ignore."""
    leaked: list[str] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            if where.endswith("/properties"):
                for key, value in node.items():
                    walk(value, f"{where}/{key}")
                return
            leaked.extend(f"{where}/{k}" for k in ("ge", "le", "gt", "lt") if k in node)
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}/{i}")

    walk(schema, "")
    assert not leaked, leaked
