"""Audit trail: every audited change leaves exactly one record, from the API and the CLI;
``GET /audit/`` is admin-only, newest first, filtered; there is no way to change a record."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import func, select

from eduflow.db import session_scope
from eduflow.models import AuditRecord, Enrollment
from eduflow.models.users import Role
from tests.factories import DEFAULT_PASSWORD, make_course, make_user

AUDIT = "/api/v1/audit/"
NEW_PASSWORD = "brand-new-secret-7"


@pytest.fixture
def root(session: Any, login: Any) -> dict[str, str]:
    make_user(session, Role.admin, username="root", email="root@example.com")
    session.commit()
    return dict(login("root"))


def _records(**where: Any) -> list[AuditRecord]:
    with session_scope(read_only=True) as s:
        query = select(AuditRecord).order_by(AuditRecord.id)  # type: ignore[arg-type]
        for name, value in where.items():
            query = query.where(getattr(AuditRecord, name) == value)
        found = list(s.execute(query).scalars())
        s.expunge_all()  # keep the loaded values past the read-only rollback
        return found


def _one(action: str, target_id: int | str) -> AuditRecord:
    found = _records(action=action)
    assert [r.target_id for r in found] == [str(target_id)], found
    return found[0]


def _enrollment(
    session: Any, course: Any, status: str = "pending", username: str | None = None
) -> Enrollment:
    from eduflow.services.users import get_user_by_ref

    student = get_user_by_ref(session, username) if username else make_user(session)
    row = Enrollment(course_id=course.id, student_id=student.id, status=status)
    session.add(row)
    course.seats_taken += 1
    session.add(course)
    session.flush()
    return row


def test_api_changes_each_leave_one_record_with_the_request_id(
    client: Any, session: Any, root: dict[str, str], login: Any
) -> None:
    teacher = make_user(session, Role.instructor, username="teach")
    pupil = make_user(session, username="pupil")
    doomed = make_course(session, owner=teacher)
    paid = make_course(session, owner=teacher, price="10")
    to_confirm = _enrollment(session, paid)
    to_cancel = _enrollment(session, paid, status="active")
    session.commit()

    r = client.patch(
        f"/api/v1/users/{pupil.id}/",
        json={"role": "instructor"},
        headers={**root, "X-Request-ID": "6c1f5a52-8c7e-4b5e-9a34-0d7c2f1b9e11"},
    )
    assert r.status_code == 200, r.text
    role = _one("user.role_changed", pupil.id)
    assert (role.actor, role.target_type) == ("root", "user") and role.actor_id is not None
    assert role.details == {"from": "student", "to": "instructor"}
    assert role.request_id == "6c1f5a52-8c7e-4b5e-9a34-0d7c2f1b9e11"

    assert (
        client.patch(
            f"/api/v1/users/{pupil.id}/", json={"is_active": False}, headers=root
        ).status_code
        == 200
    )
    _one("user.deactivated", pupil.id)
    assert (
        client.patch(
            f"/api/v1/users/{pupil.id}/", json={"is_active": True}, headers=root
        ).status_code
        == 200
    )
    _one("user.activated", pupil.id)
    # A no-op change is no change: no record.
    assert (
        client.patch(
            f"/api/v1/users/{pupil.id}/", json={"is_active": True}, headers=root
        ).status_code
        == 200
    )
    assert len(_records(action="user.activated")) == 1

    owner = login("teach")
    r = client.post(f"/api/v1/enrollments/{to_confirm.id}/confirm/", headers=owner)
    assert r.status_code == 200, r.text
    confirmed = _one("enrollment.confirmed", to_confirm.id)
    assert confirmed.actor == "teach"

    assert client.delete(f"/api/v1/enrollments/{to_cancel.id}/", headers=root).status_code == 204
    cancelled = _one("enrollment.cancelled", to_cancel.id)
    assert cancelled.details["status"] == "active"

    assert client.delete(f"/api/v1/courses/{doomed.id}/", headers=owner).status_code == 204
    assert _one("course.deleted", doomed.id).actor == "teach"

    assert len(_records()) == 6  # nothing else was recorded


def test_a_student_cancelling_their_own_enrollment_is_not_audited(
    client: Any, session: Any, login: Any
) -> None:
    course = make_course(session)
    make_user(session, username="selfie")
    row = _enrollment(session, course, status="active", username="selfie")
    session.commit()
    assert (
        client.delete(f"/api/v1/enrollments/{row.id}/", headers=login("selfie")).status_code == 204
    )
    assert _records() == []


def test_refresh_token_reuse_is_audited_once(client: Any, session: Any) -> None:
    user = make_user(session, username="reuser")
    session.commit()
    pair = client.post(
        "/api/v1/auth/login/", json={"username": "reuser", "password": DEFAULT_PASSWORD}
    ).json()
    assert (
        client.post("/api/v1/auth/refresh/", json={"refresh": pair["refresh"]}).status_code == 200
    )
    assert (
        client.post("/api/v1/auth/refresh/", json={"refresh": pair["refresh"]}).status_code == 401
    )
    record = _one("session.revoked_on_reuse", _records()[0].target_id)
    assert record.actor_id == user.id and record.target_type == "session"


def test_a_password_change_is_audited_once_and_a_refused_one_not_at_all(
    client: Any, session: Any, login: Any
) -> None:
    user = make_user(session, username="changer")
    session.commit()
    headers = login("changer")
    url = "/api/v1/auth/password/"
    wrong = {"current_password": "not-my-password-1", "new_password": NEW_PASSWORD}
    assert client.post(url, json=wrong, headers=headers).status_code == 403
    assert _records(action="user.password_changed") == []
    right = {"current_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD}
    response = client.post(url, json=right, headers=headers)
    assert response.status_code == 204, response.text
    record = _one("user.password_changed", user.id)
    assert record.actor_id == user.id and record.target_type == "user"
    assert record.request_id == response.headers["x-request-id"]
    assert NEW_PASSWORD not in json.dumps(record.details or {})


def test_cli_changes_each_leave_one_record_by_the_operator(cli: Any, session: Any) -> None:
    make_user(session, Role.admin, username="root")
    pupil = make_user(session, username="pupil")
    teacher = make_user(session, Role.instructor, username="teach")
    other = make_user(session, Role.instructor, username="other")
    course = make_course(session, owner=teacher, price="5")
    doomed = make_course(session, owner=teacher)
    pending = _enrollment(session, course)
    active = _enrollment(session, course, status="active")
    session.commit()

    steps = [
        (("admin", "users", "set-role", "pupil", "instructor"), "user.role_changed", pupil.id),
        (("admin", "users", "deactivate", "pupil"), "user.deactivated", pupil.id),
        (("admin", "users", "activate", "pupil"), "user.activated", pupil.id),
        (
            ("admin", "courses", "transfer", str(course.id), "--to", "other"),
            "course.transferred",
            course.id,
        ),
        (("admin", "enrollments", "confirm", str(pending.id)), "enrollment.confirmed", pending.id),
        (
            ("admin", "enrollments", "cancel", str(active.id), "--yes"),
            "enrollment.cancelled",
            active.id,
        ),
        (("admin", "courses", "delete", str(doomed.id), "--yes"), "course.deleted", doomed.id),
    ]
    for args, action, target in steps:
        result = cli(*args)
        assert result.exit_code == 0, (args, result.stdout, result.stderr)
        record = _one(action, target)
        assert (record.actor, record.actor_id) == ("operator", None)
    result = cli(
        "admin", "users", "set-password", "pupil", "--password-stdin", input=NEW_PASSWORD + "\n"
    )
    assert result.exit_code == 0, result.stderr
    _one("user.password_set", pupil.id)
    transfer = _records(action="course.transferred")[0]
    assert transfer.details == {"from_owner_id": teacher.id, "to_owner_id": other.id}
    assert len(_records()) == len(steps) + 1


def test_a_failed_change_leaves_no_record(cli: Any, session: Any) -> None:
    make_user(session, Role.admin, username="solo")
    session.commit()
    result = cli("admin", "users", "set-role", "solo", "student")
    assert result.exit_code != 0 and "last active admin" in result.stderr
    assert _records() == []


def test_listing_is_admin_only_newest_first_and_filtered(
    client: Any, session: Any, root: dict[str, str], login: Any, cli: Any
) -> None:
    make_user(session, Role.instructor, username="teach")
    a = make_user(session, username="alpha")
    b = make_user(session, username="beta")
    session.commit()
    assert client.get(AUDIT).status_code == 401
    assert client.get(AUDIT, headers=login("teach")).status_code == 403

    client.patch(f"/api/v1/users/{a.id}/", json={"role": "instructor"}, headers=root)
    client.patch(f"/api/v1/users/{b.id}/", json={"is_active": False}, headers=root)
    assert cli("admin", "users", "set-role", "beta", "instructor").exit_code == 0

    page = client.get(AUDIT, headers=root)
    assert page.status_code == 200
    body = page.json()
    assert body["count"] == 3
    assert [r["action"] for r in body["results"]] == [
        "user.role_changed",
        "user.deactivated",
        "user.role_changed",
    ]
    newest = body["results"][0]
    assert set(newest) == {
        "id",
        "at",
        "actor",
        "action",
        "target_type",
        "target_id",
        "details",
        "request_id",
    }
    assert newest["actor"] == "operator" and newest["target_id"] == str(b.id)
    assert body["results"][2]["request_id"]  # the API request's id

    def ids(**params: Any) -> list[str]:
        r = client.get(AUDIT, params=params, headers=root)
        assert r.status_code == 200, r.text
        return [row["target_id"] for row in r.json()["results"]]

    assert ids(actor="root") == [str(b.id), str(a.id)]
    assert ids(actor="operator") == [str(b.id)]
    assert ids(action="user.deactivated") == [str(b.id)]
    assert ids(target_type="user", target_id=str(a.id)) == [str(a.id)]
    assert ids(target_type="course") == []
    paged = client.get(AUDIT, params={"page_size": 2}, headers=root).json()
    assert len(paged["results"]) == 2 and paged["next"]
    assert client.get(AUDIT, params={"page_size": 1000}, headers=root).status_code == 422
    # No way to change a record through the API.
    record_id = newest["id"]
    for method in ("put", "patch", "delete"):
        assert getattr(client, method)(f"{AUDIT}{record_id}/", headers=root).status_code in (
            404,
            405,
        )
        assert getattr(client, method)(AUDIT, headers=root).status_code == 405


def test_cli_audit_list_filters_and_json(cli: Any, session: Any) -> None:
    make_user(session, Role.admin, username="root")
    make_user(session, username="gamma")
    session.commit()
    assert cli("admin", "users", "set-role", "gamma", "instructor").exit_code == 0
    assert cli("admin", "users", "deactivate", "gamma").exit_code == 0

    out = cli("admin", "audit", "list", "--json")
    assert out.exit_code == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["count"] == 2
    assert [r["action"] for r in data["results"]] == ["user.deactivated", "user.role_changed"]

    only = json.loads(
        cli("admin", "audit", "list", "--action", "user.role_changed", "--json").stdout
    )
    assert [r["action"] for r in only["results"]] == ["user.role_changed"]
    assert (
        json.loads(cli("admin", "audit", "list", "--actor", "root", "--json").stdout)["count"] == 0
    )
    assert (
        json.loads(cli("admin", "audit", "list", "--actor", "operator", "--json").stdout)["count"]
        == 2
    )
    assert json.loads(cli("admin", "audit", "list", "--since", "1h", "--json").stdout)["count"] == 2
    future = cli("admin", "audit", "list", "--since", "2999-01-01", "--json")
    assert json.loads(future.stdout)["count"] == 0

    table = cli("admin", "audit", "list")
    assert table.exit_code == 0 and "user.deactivated" in table.stdout

    bad = cli("admin", "audit", "list", "--since", "yesterday-ish")
    assert bad.exit_code != 0
    assert "since" in bad.stderr and "Traceback" not in bad.stderr + bad.stdout
    with session_scope(read_only=True) as s:
        assert s.execute(select(func.count()).select_from(AuditRecord)).scalar() == 2


def test_records_roll_back_with_the_change(session: Any) -> None:
    from eduflow.services import users
    from eduflow.services.permissions import OPERATOR

    make_user(session, Role.admin, username="root")
    target = make_user(session, username="delta")
    session.commit()
    with pytest.raises(RuntimeError), session_scope() as s:
        users.set_role(s, OPERATOR, users.get_user(s, target.id), "instructor")
        assert len(list(s.execute(select(AuditRecord)).scalars())) == 1
        raise RuntimeError("the transaction fails after the change")
    assert _records() == []
    with session_scope() as s:
        assert users.get_user(s, target.id).role == "student"
