"""Account rules at the service level (shared by the API and the operator CLI)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from eduflow.errors import Conflict, Forbidden, Invalid, NotFound
from eduflow.models.sessions import LoginSession
from eduflow.models.users import Role
from eduflow.security import verify_password
from eduflow.services import auth, users
from eduflow.services.permissions import OPERATOR, Principal
from tests.factories import make_user


def test_create_user_applies_the_registration_rules(session: Any) -> None:
    user = users.create_user(session, "grace", "Grace@Navy.MIL", "cobol-1959", "instructor")
    assert (user.email, user.role, user.is_active) == ("grace@navy.mil", "instructor", True)
    assert verify_password("cobol-1959", user.password_hash)
    with pytest.raises(Invalid) as bad:
        users.create_user(session, "x", "nope", "123456789")
    assert {e["field"] for e in bad.value.errors or []} == {"username", "email", "password"}
    with pytest.raises(Invalid):
        users.create_user(session, "hopper", "h@example.com", "hopper-pass", "wizard")
    with pytest.raises(Conflict) as taken:
        users.create_user(session, "grace2", "GRACE@navy.mil", "cobol-1959")
    assert taken.value.errors == [
        {"field": "email", "message": "an account with this email already exists"}
    ]
    # The failed attempts left the transaction usable and wrote nothing.
    assert users.list_users(session)[0] == 1


def test_get_user_by_ref(session: Any) -> None:
    user = make_user(session, username="ref.user", email="ref@example.com")
    assert users.get_user_by_ref(session, str(user.id)) is user
    assert users.get_user_by_ref(session, "ref.user") is user
    assert users.get_user_by_ref(session, " REF@example.com ") is user
    with pytest.raises(NotFound):
        users.get_user_by_ref(session, "ghost")


def test_role_changes_need_an_admin_and_bump_the_auth_version(session: Any) -> None:
    user = make_user(session, username="bumped")
    version = user.auth_version
    student = Principal(id=user.id, username="bumped", role=Role.student)
    with pytest.raises(Forbidden):
        users.set_role(session, student, user, Role.admin)
    users.set_role(session, OPERATOR, user, "instructor")
    assert (user.role, user.auth_version) == ("instructor", version + 1)
    users.set_role(session, OPERATOR, user, "instructor")  # no change, no bump
    assert user.auth_version == version + 1


def test_last_admin_rule_counts_only_active_admins(session: Any) -> None:
    only = make_user(session, Role.admin, username="only")
    make_user(session, Role.admin, username="dormant", is_active=False)
    with pytest.raises(Conflict):
        users.set_active(session, OPERATOR, only, False)
    with pytest.raises(Conflict):
        users.set_role(session, OPERATOR, only, Role.student)


def test_set_password_checks_rules_and_ends_every_login(session: Any) -> None:
    user = make_user(session, username="pwuser")
    auth.issue_tokens(session, user)
    auth.issue_tokens(session, user)
    with pytest.raises(Invalid):
        users.set_password(session, OPERATOR, user, "pwuser")
    with pytest.raises(Invalid):
        users.set_password(session, OPERATOR, user, "x" * 73)
    users.set_password(session, OPERATOR, user, "fresh-secret-9")
    assert verify_password("fresh-secret-9", user.password_hash)
    live = session.execute(
        select(LoginSession).where(
            LoginSession.user_id == user.id,  # type: ignore[arg-type]
            LoginSession.revoked_at.is_(None),  # type: ignore[union-attr]
        )
    ).all()
    assert live == []


def test_list_users_search_is_literal(session: Any) -> None:
    make_user(session, username="under_score")
    make_user(session, username="underXscore")
    count, found = users.list_users(session, search="r_s")
    assert count == 1 and found[0].username == "under_score"
    assert users.list_users(session, role=Role.admin) == (0, [])
