"""``eduflow admin users``: happy paths, --json shapes, failures, and immediate API effect."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select

from eduflow.db import session_scope
from eduflow.models import User
from eduflow.models.users import Role
from tests.factories import DEFAULT_PASSWORD, make_user

USER_KEYS = {
    "id",
    "username",
    "email",
    "email_verified",
    "full_name",
    "role",
    "is_active",
    "date_joined",
}
NEW_PASSWORD = "brand-new-secret-7"


def _users(session: Any, **kinds: int) -> None:
    for role, count in kinds.items():
        for _ in range(count):
            make_user(session, Role(role))
    session.commit()


def _no_traceback(result: Any) -> None:
    assert "Traceback" not in result.stderr
    assert "Traceback" not in result.stdout


def _user_count() -> int:
    with session_scope() as session:
        return int(session.scalar(select(func.count()).select_from(User)) or 0)


def test_create_with_password_stdin_and_log_in(cli: Any, login: Any) -> None:
    result = cli(
        "admin", "users", "create", "--username", "ada.l", "--email", "Ada@Example.org",
        "--role", "instructor", "--password-stdin", "--json",
        input=NEW_PASSWORD + "\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) == USER_KEYS
    assert (data["username"], data["email"], data["role"]) == (
        "ada.l",
        "ada@example.org",
        "instructor",
    )
    assert data["is_active"] is True
    assert login("ada.l", NEW_PASSWORD)


def test_create_prompts_twice_hidden(cli: Any) -> None:
    result = cli(
        "admin", "users", "create", "--username", "bob", "--email", "bob@example.org",
        input=f"{NEW_PASSWORD}\n{NEW_PASSWORD}\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "created student bob" in result.stdout
    assert NEW_PASSWORD not in result.stdout + result.stderr  # hidden input is not echoed
    assert result.stderr.count("Password") >= 1 and "Repeat" in result.stderr


def test_create_with_mismatched_prompts_creates_nothing(cli: Any) -> None:
    result = cli(
        "admin", "users", "create", "--username", "bob", "--email", "bob@example.org",
        input=f"{NEW_PASSWORD}\nsomething-else-1\n",
    )  # fmt: skip
    assert result.exit_code == 1
    _no_traceback(result)
    assert _user_count() == 0


def test_create_failures(cli: Any, session: Any) -> None:
    make_user(session, username="taken", email="taken@example.org")
    session.commit()
    base = ("admin", "users", "create", "--password-stdin")
    duplicate = cli(
        *base, "--username", "other", "--email", "TAKEN@example.org", input="pw-12345678\n"
    )
    assert duplicate.exit_code == 1
    assert "already exists" in duplicate.stderr
    _no_traceback(duplicate)
    bad_role = cli(*base, "--username", "x_y", "--email", "x@example.org", "--role", "god",
                   input="pw-12345678\n")  # fmt: skip
    assert bad_role.exit_code == 2
    assert "is not one of" in bad_role.stderr
    weak = cli(*base, "--username", "x_y", "--email", "x@example.org", input="12345678\n")
    assert weak.exit_code == 1
    assert "digits" in weak.stderr
    bad_email = cli(*base, "--username", "x_y", "--email", "not-an-email", input="pw-12345678\n")
    assert bad_email.exit_code == 1
    assert "email" in bad_email.stderr
    empty = cli(*base, "--username", "x_y", "--email", "x@example.org", input="")
    assert empty.exit_code == 1
    for result in (weak, bad_email, empty):
        _no_traceback(result)
        assert len(result.stderr.strip().splitlines()) == 1
    assert _user_count() == 1


def test_list_filters_and_json(cli: Any, session: Any) -> None:
    _users(session, student=3, instructor=2)
    make_user(session, username="sleepy", is_active=False)
    session.commit()
    data = json.loads(cli("admin", "users", "list", "--json").stdout)
    assert data["count"] == 6 and len(data["results"]) == 6
    assert all(set(row) == USER_KEYS for row in data["results"])
    assert [r["id"] for r in data["results"]] == sorted(r["id"] for r in data["results"])
    instructors = json.loads(cli("admin", "users", "list", "--role", "instructor", "--json").stdout)
    assert instructors["count"] == 2
    assert {r["role"] for r in instructors["results"]} == {"instructor"}
    inactive = json.loads(cli("admin", "users", "list", "--inactive", "--json").stdout)
    assert [r["username"] for r in inactive["results"]] == ["sleepy"]
    assert json.loads(cli("admin", "users", "list", "--active", "--json").stdout)["count"] == 5
    found = json.loads(cli("admin", "users", "list", "--search", "SLEEP", "--json").stdout)
    assert [r["username"] for r in found["results"]] == ["sleepy"]
    limited = cli("admin", "users", "list", "--limit", "2", "--json")
    assert len(json.loads(limited.stdout)["results"]) == 2
    assert json.loads(limited.stdout)["count"] == 6


def test_list_table_is_plain_text_when_piped(cli: Any, session: Any) -> None:
    _users(session, student=3)
    result = cli("admin", "users", "list", "--limit", "2")
    assert result.exit_code == 0
    lines = result.stdout.strip().splitlines()
    assert lines[0].split("\t") == [
        "id",
        "username",
        "full_name",
        "email",
        "role",
        "is_active",
        "date_joined",
    ]
    assert len(lines) == 3
    assert "showing 2 of 3" in result.stderr


def test_show_by_id_username_or_email(cli: Any, session: Any) -> None:
    user = make_user(session, username="carol", email="carol@example.org")
    session.commit()
    for ref in (str(user.id), "carol", "CAROL@example.org"):
        result = cli("admin", "users", "show", ref, "--json")
        assert result.exit_code == 0, (ref, result.stderr)
        assert json.loads(result.stdout)["username"] == "carol"
    table = cli("admin", "users", "show", "carol")
    assert "carol@example.org" in table.stdout
    missing = cli("admin", "users", "show", "nobody")
    assert missing.exit_code == 1
    assert "No user matches 'nobody'" in missing.stderr
    _no_traceback(missing)
    for ref in ("99999999999999999999", str(2**31), "0"):  # beyond the id column: no SQL error
        huge = cli("admin", "users", "show", ref)
        assert huge.exit_code == 1
        assert huge.stderr.strip() == f"Error: No user matches '{ref}'"


def test_set_role_takes_effect_on_the_next_request(
    cli: Any, client: Any, login: Any, session: Any
) -> None:
    make_user(session, Role.admin, username="dave")
    make_user(session, Role.admin, username="root")
    session.commit()
    headers = login("dave")
    assert client.get("/api/v1/users/", headers=headers).status_code == 200
    result = cli("admin", "users", "set-role", "dave", "student")
    assert result.exit_code == 0, result.stderr
    assert "dave is now student" in result.stdout
    # The same access token no longer carries admin rights: not one more admin request.
    assert client.get("/api/v1/users/", headers=headers).status_code == 403
    student = login("dave")
    assert client.get("/api/v1/users/", headers=student).status_code == 403
    assert client.get("/api/v1/auth/me/", headers=student).json()["role"] == "student"
    assert cli("admin", "users", "set-role", "dave", "instructor").exit_code == 0
    # A promotion, too, applies to the same token at once.
    assert client.get("/api/v1/auth/me/", headers=student).json()["role"] == "instructor"
    assert client.get("/api/v1/auth/me/", headers=login("dave")).json()["role"] == "instructor"


def test_set_role_failures(cli: Any, session: Any) -> None:
    make_user(session, Role.admin, username="root")
    session.commit()
    unknown = cli("admin", "users", "set-role", "ghost", "admin")
    assert unknown.exit_code == 1 and "No user matches" in unknown.stderr
    invalid = cli("admin", "users", "set-role", "root", "superuser")
    assert invalid.exit_code == 2 and "is not one of" in invalid.stderr
    last_admin = cli("admin", "users", "set-role", "root", "student")
    assert last_admin.exit_code == 1 and "last active admin" in last_admin.stderr
    for result in (unknown, invalid, last_admin):
        _no_traceback(result)
    assert json.loads(cli("admin", "users", "show", "root", "--json").stdout)["role"] == "admin"


def test_deactivate_and_activate_take_effect_immediately(
    cli: Any, client: Any, login: Any, session: Any
) -> None:
    make_user(session, username="erin")
    session.commit()
    headers = login("erin")
    assert client.get("/api/v1/auth/me/", headers=headers).status_code == 200
    result = cli("admin", "users", "deactivate", "erin")
    assert result.exit_code == 0 and "deactivated" in result.stdout
    assert client.get("/api/v1/auth/me/", headers=headers).status_code == 401
    denied = client.post(
        "/api/v1/auth/login/", json={"username": "erin", "password": DEFAULT_PASSWORD}
    )
    assert denied.status_code in (401, 403)
    assert cli("admin", "users", "activate", "erin").exit_code == 0
    assert json.loads(cli("admin", "users", "show", "erin", "--json").stdout)["is_active"] is True
    fresh = login("erin")
    assert client.get("/api/v1/auth/me/", headers=fresh).status_code == 200
    assert cli("admin", "users", "activate", "nobody").exit_code == 1


def test_set_password_ends_logins(cli: Any, client: Any, login: Any, session: Any) -> None:
    make_user(session, username="frank")
    session.commit()
    headers = login("frank")
    result = cli(
        "admin", "users", "set-password", "frank", "--password-stdin", input=NEW_PASSWORD + "\n"
    )
    assert result.exit_code == 0, result.stderr
    assert client.get("/api/v1/auth/me/", headers=headers).status_code == 401
    old = client.post(
        "/api/v1/auth/login/", json={"username": "frank", "password": DEFAULT_PASSWORD}
    )
    assert old.status_code == 401
    assert login("frank", NEW_PASSWORD)


def test_set_password_failures(cli: Any, login: Any, session: Any) -> None:
    make_user(session, username="gina")
    session.commit()
    weak = cli("admin", "users", "set-password", "gina", "--password-stdin", input="short\n")
    assert weak.exit_code == 1 and "at least 8" in weak.stderr
    unknown = cli(
        "admin", "users", "set-password", "ghost", "--password-stdin", input=NEW_PASSWORD + "\n"
    )
    assert unknown.exit_code == 1 and "No user matches" in unknown.stderr
    for result in (weak, unknown):
        _no_traceback(result)
    assert login("gina")  # the password is unchanged
