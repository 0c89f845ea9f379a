"""Self-service accounts: profile, password, logins, and deletion (self or admin).

Deletion keeps the row -- enrollments, certificates and audit records point at it --
but erases what names the person: username and email become ``deleted-<id>`` (and
``deleted-<id>@deleted.invalid``), the full name and password go, every login ends and
the account can never log in again. Active and pending enrollments are cancelled one by
one through ``services.enrollments.cancel_enrollment``, the same seat rule as an
unenroll. Certificates keep the name copied at issue. One transaction does it all.
"""

from __future__ import annotations

import contextlib

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from eduflow.errors import Conflict, Forbidden, NotFound
from eduflow.models._base import utcnow
from eduflow.models.enrollments import Enrollment
from eduflow.models.tokens import TokenPurpose
from eduflow.models.users import ProfileUpdate, Role, User, UserCreate
from eduflow.security import verify_password
from eduflow.services import (
    account_tokens,
    audit,
    auth,
    email_verification,
    enrollments,
    throttle,
    users,
    waitlist,
)
from eduflow.services.permissions import Principal, require_role

UNUSABLE_PASSWORD = "!"  # not a bcrypt hash: no password ever matches it


def register(session: Session, data: UserCreate, client_address: str) -> User:
    """Self-registration (throttled per client address): a student, and one verification
    email to the new address."""
    throttle.registration(client_address)
    user = users.register_user(session, data)
    email_verification.send_verification(session, user)
    return user


def update_profile(session: Session, actor: Principal, data: ProfileUpdate) -> User:
    """``PATCH /auth/me/``: a new full name and/or email (unique; it must be verified again)."""
    user = users.get_user(session, actor.id)
    changes = data.model_dump(exclude_unset=True)
    if not changes:
        return user
    session.refresh(user, with_for_update=True)
    if "full_name" in changes:
        user.full_name = changes["full_name"]
    new_email = changes.get("email")
    if new_email is not None and new_email != user.email:
        taken = session.execute(
            select(col(User.id)).where(col(User.email) == new_email, col(User.id) != user.id)
        ).first()
        if taken:
            raise Conflict(
                "An account with this email already exists",
                slug="account-exists",
                errors=[{"field": "email", "message": "an account with this email already exists"}],
            )
        user.email = new_email
        user.email_verified = False
        assert user.id is not None
        account_tokens.spend_all(session, user.id, TokenPurpose.verify_email)
        email_verification.send_verification(session, user)
    try:
        with session.begin_nested():  # a registration racing for the address: 409, not 500
            users.changed(session, user)
    except IntegrityError as exc:
        raise Conflict("An account with this email already exists", slug="account-exists") from exc
    return user


def change_password(
    session: Session, actor: Principal, current_password: str, new_password: str
) -> None:
    """``POST /auth/password/``: every other login ends, the caller's stays (403: wrong
    current password)."""
    user = users.get_user(session, actor.id)
    if not verify_password(current_password, user.password_hash):
        raise Forbidden("The current password is not right", slug="wrong-password")
    users.apply_new_password(
        session, actor, user, new_password, "user.password_changed", keep_session=actor.session_id
    )


def delete_own_account(session: Session, actor: Principal, password: str) -> None:
    """``DELETE /auth/me/``: the password confirms it (403 when wrong)."""
    user = users.get_user(session, actor.id)
    if not verify_password(password, user.password_hash):
        raise Forbidden("The password is not right", slug="wrong-password")
    _erase(session, actor, user)


def delete_account(session: Session, actor: Principal, user_id: int) -> None:
    """An admin (or the operator) deletes ``user_id``; the last active admin stays."""
    require_role(actor, Role.admin)
    _erase(session, actor, users.get_account(session, user_id))


def _erase(session: Session, actor: Principal, user: User) -> None:
    assert user.id is not None
    users.lock_for_deletion(session, user)
    # Cancelled as the student would unenroll: the same seat rule (and waitlist moves).
    student = Principal(id=user.id, username=user.username, role=users.role_of(user))
    for enrollment_id in list(
        session.execute(
            select(col(Enrollment.id)).where(col(Enrollment.student_id) == user.id)
        ).scalars()
    ):
        with contextlib.suppress(NotFound):  # cancelled meanwhile
            enrollments.cancel_enrollment(session, student, enrollment_id)
    waitlist.leave_every_line(session, user.id)  # held offers pass to the next in line
    auth.revoke_user_sessions(session, user.id, "account-deleted")
    account_tokens.spend_all(session, user.id, TokenPurpose.password_reset)
    account_tokens.spend_all(session, user.id, TokenPurpose.verify_email)
    tombstone = f"deleted-{user.id}"
    user.username = tombstone
    user.email = f"{tombstone}@deleted.invalid"
    user.full_name = ""
    user.password_hash = UNUSABLE_PASSWORD
    user.email_verified = False
    user.is_active = False
    user.deleted_at = utcnow()
    audit.record(session, actor, "user.deleted", "user", user.id)
    users.changed(session, user)
