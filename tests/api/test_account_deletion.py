"""Account deletion (self, admin, CLI): one transaction that ends every login, erases the
person, frees their seats and is audited; nothing shows them afterwards, nothing 500s."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select

from eduflow.db import session_scope
from eduflow.models import AuditRecord, Course, Enrollment, User
from eduflow.models.users import Role
from tests.account_helpers import API, bearer, tokens
from tests.factories import DEFAULT_PASSWORD, make_course, make_enrollment, make_user

ME = f"{API}/auth/me/"


def _world(session: Any) -> dict[str, Any]:
    make_user(session, Role.admin, username="root")
    leaver = make_user(session, username="leaver", email="leaver@example.com", full_name="Lee Ver")
    full = make_course(session, capacity=1, title="Full Course")
    paid = make_course(session, price="9.50", title="Paid Course")
    make_enrollment(session, leaver, full)
    make_enrollment(session, leaver, paid, status="pending")
    session.commit()
    return {"leaver": leaver.id, "full": full.id, "paid": paid.id}


def _seats(course_id: int) -> int:
    with session_scope(read_only=True) as s:
        course = s.get(Course, course_id)
        assert course is not None
        return course.seats_taken


def _assert_erased(client: Any, admin: dict[str, str], user_id: int, cli: Any) -> None:
    with session_scope(read_only=True) as s:
        user = s.get(User, user_id)
        assert user is not None
        assert (user.username, user.email, user.full_name) == (
            f"deleted-{user_id}",
            f"deleted-{user_id}@deleted.invalid",
            "",
        )
        assert user.deleted_at is not None and not user.is_active
        left = s.execute(
            select(func.count()).select_from(Enrollment).where(Enrollment.student_id == user_id)  # type: ignore[arg-type]
        ).scalar()
        assert left == 0
        deleted = (
            s.execute(
                select(AuditRecord).where(AuditRecord.action == "user.deleted")  # type: ignore[arg-type]
            )
            .scalars()
            .all()
        )
        assert [r.target_id for r in deleted] == [str(user_id)]
    shown = [
        client.get(f"{API}/users/", headers=admin).text,
        client.get(f"{API}/users/{user_id}/", headers=admin).text,
        client.get(f"{API}/audit/", headers=admin).text,
        client.get(f"{API}/enrollments/", headers=admin).text,
        cli("admin", "users", "list", "--json").stdout,
        cli("admin", "users", "show", str(user_id), "--json").stdout,
        cli("admin", "audit", "list", "--json").stdout,
        cli("admin", "enrollments", "list", "--json").stdout,
    ]
    for text in shown:
        assert "leaver" not in text.lower() and "Lee Ver" not in text, text
    assert (
        json.loads(cli("admin", "users", "show", str(user_id), "--json").stdout)["username"]
        == f"deleted-{user_id}"
    )


def test_deleting_ones_own_account(client: Any, session: Any, login: Any, cli: Any) -> None:
    ids = _world(session)
    first = tokens(client, "leaver", DEFAULT_PASSWORD)
    second = tokens(client, "leaver", DEFAULT_PASSWORD)
    headers = bearer(first["access"])
    # Warm every cached path with the token first.
    for _ in range(2):
        assert client.get(ME, headers=headers).status_code == 200
        assert client.get(f"{API}/courses/", headers=headers).status_code == 200
    assert _seats(ids["full"]) == 1

    wrong = client.request("DELETE", ME, json={"password": "not-my-password"}, headers=headers)
    assert wrong.status_code == 403
    assert client.request("DELETE", ME, json={}, headers=headers).status_code == 422
    gone = client.request("DELETE", ME, json={"password": DEFAULT_PASSWORD}, headers=headers)
    assert gone.status_code == 204, gone.text

    for pair in (first, second):
        h = bearer(pair["access"])
        assert client.get(ME, headers=h).status_code == 401
        assert client.get(f"{API}/courses/", headers=h).status_code == 401
        assert client.get(f"{API}/enrollments/", headers=h).status_code == 401
        enroll = client.post(f"{API}/enrollments/", json={"course": ids["paid"]}, headers=h)
        assert enroll.status_code == 401
        assert (
            client.post(f"{API}/auth/refresh/", json={"refresh": pair["refresh"]}).status_code
            == 401
        )
    for name in ("leaver", "leaver@example.com", f"deleted-{ids['leaver']}"):
        response = client.post(
            f"{API}/auth/login/", json={"username": name, "password": DEFAULT_PASSWORD}
        )
        assert response.status_code == 401
    assert _seats(ids["full"]) == 0 and _seats(ids["paid"]) == 0
    _assert_erased(client, login("root"), ids["leaver"], cli)
    # The seat is free for someone else, and the old address can register again.
    register = {"username": "newcomer", "email": "leaver@example.com", "password": "fresh-start-1"}
    assert client.post(f"{API}/auth/register/", json=register).status_code == 201


def test_an_admin_deletes_an_account_over_http(
    client: Any, session: Any, login: Any, cli: Any
) -> None:
    ids = _world(session)
    victim = bearer(tokens(client, "leaver", DEFAULT_PASSWORD)["access"])
    client.get(ME, headers=victim)
    admin = login("root")
    assert client.delete(f"{API}/users/{ids['leaver']}/", headers=victim).status_code == 403
    assert client.delete(f"{API}/users/{ids['leaver']}/", headers=admin).status_code == 204
    assert client.get(ME, headers=victim).status_code == 401
    assert client.delete(f"{API}/users/{ids['leaver']}/", headers=admin).status_code == 404
    assert client.delete(f"{API}/users/999999/", headers=admin).status_code == 404
    _assert_erased(client, admin, ids["leaver"], cli)
    with session_scope(read_only=True) as s:
        actor = s.execute(
            select(AuditRecord.actor).where(AuditRecord.action == "user.deleted")
        ).scalar()  # type: ignore[arg-type]
    assert actor == "root"


def test_the_operator_deletes_an_account(client: Any, session: Any, login: Any, cli: Any) -> None:
    ids = _world(session)
    victim = bearer(tokens(client, "leaver", DEFAULT_PASSWORD)["access"])
    client.get(ME, headers=victim)
    aborted = cli("admin", "users", "delete", "leaver", input="n\n")
    assert aborted.exit_code != 0 and "nothing was changed" in aborted.stderr
    assert client.get(ME, headers=victim).status_code == 200
    done = cli("admin", "users", "delete", "leaver", "--yes")
    assert done.exit_code == 0, done.stderr
    assert "leaver" not in done.stdout
    assert client.get(ME, headers=victim).status_code == 401
    again = cli("admin", "users", "delete", str(ids["leaver"]), "--yes")
    assert again.exit_code != 0 and "already deleted" in again.stderr
    assert "Traceback" not in again.stderr + again.stdout
    _assert_erased(client, login("root"), ids["leaver"], cli)


def test_the_last_admin_cannot_be_deleted(client: Any, session: Any, cli: Any) -> None:
    make_user(session, Role.admin, username="only")
    session.commit()
    headers = bearer(tokens(client, "only", DEFAULT_PASSWORD)["access"])
    response = client.request("DELETE", ME, json={"password": DEFAULT_PASSWORD}, headers=headers)
    assert response.status_code == 409
    assert cli("admin", "users", "delete", "only", "--yes").exit_code != 0
    assert client.get(ME, headers=headers).status_code == 200
