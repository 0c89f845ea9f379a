"""Certificates over HTTP: who lists what, public verification and PDF, revocation."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from eduflow.models.users import Role
from eduflow.services.auth import issue_tokens
from tests.conftest import assert_problem_response
from tests.factories import make_certificate, make_course, make_user

API = "/api/v1"
PUBLIC_KEYS = {"serial", "student_name", "course_title", "issued_at", "status"}


@dataclass
class World:
    """Two students with certificates in two instructors' courses, an admin, tokens."""

    users: dict[str, Any]
    headers: dict[str, dict[str, str]]
    mine: Any  # student "ada" in owner's course
    theirs: Any  # student "bob" in other's course


@pytest.fixture
def world(session: Any) -> World:
    users = {
        "ada": make_user(session, Role.student, username="ada", email="ada.private@example.com"),
        "bob": make_user(session, Role.student, username="bob"),
        "owner": make_user(session, Role.instructor, username="owner"),
        "other": make_user(session, Role.instructor, username="other"),
        "admin": make_user(session, Role.admin, username="admin"),
    }
    headers: dict[str, dict[str, str]] = {"anonymous": {}}
    for name, user in users.items():
        headers[name] = {"Authorization": f"Bearer {issue_tokens(session, user).access}"}
    course = make_course(session, owner=users["owner"], title="Practical Databases")
    other_course = make_course(session, owner=users["other"], title="Rust for Everyone")
    mine = make_certificate(session, users["ada"], course, student_name="Ада Лавлейс")
    theirs = make_certificate(session, users["bob"], other_course)
    session.commit()
    return World(users, headers, mine, theirs)


def _serials(response: Any) -> set[str]:
    assert response.status_code == 200, response.text
    return {c["serial"] for c in response.json()["results"]}


def test_listing_follows_roles_and_ownership(client: Any, world: World) -> None:
    get = lambda who, q="": client.get(f"{API}/certificates/{q}", headers=world.headers[who])  # noqa: E731
    assert get("anonymous").status_code == 401
    assert _serials(get("ada")) == {world.mine.serial}
    assert _serials(get("bob")) == {world.theirs.serial}
    assert _serials(get("owner")) == {world.mine.serial}
    assert _serials(get("other")) == {world.theirs.serial}
    assert _serials(get("admin")) == {world.mine.serial, world.theirs.serial}
    course = world.mine.course_id
    assert _serials(get("admin", f"?course={course}")) == {world.mine.serial}
    assert _serials(get("admin", "?student=bob")) == {world.theirs.serial}
    assert _serials(get("ada", "?student=bob")) == set()  # a filter never widens the view
    assert get("admin", "?course=0").status_code == 422


def test_listing_representation(client: Any, world: World) -> None:
    body = client.get(f"{API}/certificates/", headers=world.headers["ada"]).json()
    assert body["count"] == 1 and body["next"] is None
    [item] = body["results"]
    assert item == {
        "serial": world.mine.serial,
        "course": world.mine.course_id,
        "course_title": "Practical Databases",
        "student": "ada",
        "student_name": "Ада Лавлейс",
        "issued_at": item["issued_at"],
        "revoked_at": None,
        "status": "valid",
        "verify_url": f"http://localhost:8000/api/v1/certificates/{world.mine.serial}/",
    }
    assert item["issued_at"].endswith("Z")


def test_verification_is_public_and_says_nothing_private(client: Any, world: World) -> None:
    response = client.get(f"{API}/certificates/{world.mine.serial}/")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == PUBLIC_KEYS
    assert body["student_name"] == "Ада Лавлейс" and body["status"] == "valid"
    assert "ada.private@example.com" not in response.text
    assert "no-cache" in response.headers["cache-control"]
    again = client.get(
        f"{API}/certificates/{world.mine.serial}/",
        headers={"If-None-Match": response.headers["etag"]},
    )
    assert again.status_code == 304
    # A token changes nothing on a public route.
    assert (
        client.get(f"{API}/certificates/{world.mine.serial}/", headers=world.headers["bob"]).json()
        == body
    )


@pytest.mark.parametrize("path", ["/", "/pdf/"])
def test_unknown_serial_is_404(client: Any, world: World, path: str) -> None:
    for serial in ("nope", world.mine.serial[:-1], "x" * 64, "ü%20ß"):
        response = client.get(f"{API}/certificates/{serial}{path}")
        assert response.status_code == 404, (serial, response.text)
        assert world.mine.serial not in response.text
    assert client.get(f"{API}/certificates/{'x' * 65}{path}").status_code in (404, 422)


def test_pdf_is_public_one_page_with_the_printed_fields(client: Any, world: World) -> None:
    from pypdf import PdfReader

    response = client.get(f"{API}/certificates/{world.mine.serial}/pdf/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(response.content))
    assert len(reader.pages) == 1
    page = reader.pages[0]
    assert float(page.mediabox.width) > float(page.mediabox.height)  # landscape
    text = page.extract_text()
    for printed in ("Ада Лавлейс", "Practical Databases", world.mine.serial, "Issued on"):
        assert printed in text, printed
    assert "ada.private@example.com" not in text and "REVOKED" not in text
    tag = response.headers["etag"]
    assert (
        client.get(
            f"{API}/certificates/{world.mine.serial}/pdf/", headers={"If-None-Match": tag}
        ).status_code
        == 304
    )


def test_revoke_is_for_admins_only(client: Any, world: World) -> None:
    url = f"{API}/certificates/{world.mine.serial}/revoke/"
    body = {"reason": "Completed by mistake"}
    assert client.post(url, json=body).status_code == 401
    for who in ("ada", "owner", "other"):
        assert client.post(url, json=body, headers=world.headers[who]).status_code == 403
    assert (
        client.post(
            f"{API}/certificates/nope/revoke/", json=body, headers=world.headers["admin"]
        ).status_code
        == 404
    )
    for bad in (
        {},
        {"reason": "  "},
        {"reason": "x" * 501},
        {"reason": 5},
        {"reason": "ok", "x": 1},
    ):
        assert client.post(url, json=bad, headers=world.headers["admin"]).status_code == 422, bad
    assert client.get(f"{API}/certificates/{world.mine.serial}/").json()["status"] == "valid"


def _second_process(app: Any) -> Any:
    """Another server process's view: its own application, the same Redis and database."""
    client = TestClient(app, base_url="http://testserver")
    client.event_hooks["response"].append(assert_problem_response)
    return client


def test_revoked_shows_at_once_everywhere(client: Any, world: World) -> None:
    from pypdf import PdfReader

    from eduflow.api.app import create_app

    serial = world.mine.serial
    other = _second_process(create_app())
    with other:
        # Both "processes" have answered (and cached) the valid certificate.
        first_pdf = other.get(f"{API}/certificates/{serial}/pdf/")
        assert client.get(f"{API}/certificates/{serial}/pdf/").content == first_pdf.content
        verify = other.get(f"{API}/certificates/{serial}/")
        assert verify.json()["status"] == "valid"

        response = client.post(
            f"{API}/certificates/{serial}/revoke/",
            json={"reason": "  Plagiarised final project  "},
            headers=world.headers["admin"],
        )
        assert response.status_code == 200, response.text
        revoked = response.json()
        assert revoked["status"] == "revoked" and revoked["revoked_at"]
        assert revoked["revoke_reason"] == "Plagiarised final project"

        # The very next request, in the other process, with the old ETags: revoked.
        after = other.get(
            f"{API}/certificates/{serial}/", headers={"If-None-Match": verify.headers["etag"]}
        )
        assert after.status_code == 200 and after.json()["status"] == "revoked"
        pdf = other.get(
            f"{API}/certificates/{serial}/pdf/",
            headers={"If-None-Match": first_pdf.headers["etag"]},
        )
        assert pdf.status_code == 200 and pdf.content != first_pdf.content
        assert "REVOKED" in PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
        listed = other.get(f"{API}/certificates/", headers=world.headers["ada"]).json()
        assert listed["results"][0]["status"] == "revoked"
        assert "revoke_reason" not in listed["results"][0]  # the student sees no admin notes
        assert "revoke_reason" not in after.json()

    again = client.post(
        f"{API}/certificates/{serial}/revoke/",
        json={"reason": "twice"},
        headers=world.headers["admin"],
    )
    assert again.status_code == 409
    assert again.json()["type"].endswith("/certificate-revoked")
    # Revoking issued nothing new.
    assert client.get(f"{API}/certificates/", headers=world.headers["admin"]).json()["count"] == 2


def test_metrics_count_issued_and_revoked(client: Any, world: World) -> None:
    def sample(name: str) -> float:
        for line in client.get("/metrics").text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise AssertionError(f"{name} missing")

    assert sample("eduflow_certificates_issued") == 2
    assert sample("eduflow_certificates_revoked") == 0
    client.post(
        f"{API}/certificates/{world.theirs.serial}/revoke/",
        json={"reason": "Account fraud"},
        headers=world.headers["admin"],
    )
    assert sample("eduflow_certificates_issued") == 2
    assert sample("eduflow_certificates_revoked") == 1


def test_openapi_documents_the_routes(client: Any) -> None:
    paths = client.get("/api/schema/").json()["paths"]
    assert "/api/v1/certificates/{serial}/pdf/" in paths
    assert (
        "application/pdf"
        in paths["/api/v1/certificates/{serial}/pdf/"]["get"]["responses"]["200"]["content"]
    )
    assert paths["/api/v1/certificates/{serial}/revoke/"]["post"]


def test_revoke_leaves_one_audit_record(client: Any, world: World) -> None:
    from sqlmodel import select

    from eduflow.db import session_scope
    from eduflow.models import AuditRecord

    serial = world.mine.serial
    response = client.post(
        f"{API}/certificates/{serial}/revoke/",
        json={"reason": "Plagiarised final project"},
        headers={**world.headers["admin"], "X-Request-ID": "2f1c7a9e-0c1b-4d35-9a55-6d2f8e1b7c40"},
    )
    assert response.status_code == 200
    client.post(  # refused: no second record
        f"{API}/certificates/{serial}/revoke/",
        json={"reason": "again"},
        headers=world.headers["admin"],
    )
    with session_scope() as s:
        records = s.exec(
            select(AuditRecord).where(AuditRecord.action == "certificate.revoked")
        ).all()
    [record] = records
    assert (record.actor, record.target_type, record.target_id) == ("admin", "certificate", serial)
    assert record.details["reason"] == "Plagiarised final project"
    assert record.request_id == "2f1c7a9e-0c1b-4d35-9a55-6d2f8e1b7c40"
