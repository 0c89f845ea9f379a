"""Accounts: registration, lookup, listing and the admin changes (role, activity, password).

Shared by the API (``/auth/register/``, ``/users/``) and the operator CLI
(``eduflow admin users …``). Every change of role, activity or password bumps
``auth_version`` under a row lock and publishes the new auth state after the commit,
so it takes effect on the user's next request (see ``services/auth.py``).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from eduflow.errors import Conflict, Invalid, NotFound
from eduflow.models.tokens import TokenPurpose
from eduflow.models.users import (
    SEARCH_KEY_SEPARATOR,
    Role,
    User,
    UserCreate,
    UserUpdate,
    password_problem,
)
from eduflow.security import hash_password
from eduflow.services import account_tokens, audit, auth, auth_state
from eduflow.services.paging import (
    Page,
    PageRequest,
    SortKey,
    finish_page,
    key_contains_text,
    plan_page,
)
from eduflow.services.permissions import Principal, require_role


def _invalid_from(exc: ValidationError) -> Invalid:
    errors = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err.get("loc", ())) or "body"
        message = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        errors.append({"field": field, "message": message})
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return Invalid(detail, errors=errors)


def _ensure_unique(session: Session, username: str, email: str) -> None:
    taken = session.execute(
        select(col(User.username), col(User.email)).where(
            or_(col(User.username) == username, col(User.email) == email)
        )
    ).all()
    errors = []
    if any(row.username == username for row in taken):
        errors.append({"field": "username", "message": "this username is already taken"})
    if any(row.email == email for row in taken):
        errors.append({"field": "email", "message": "an account with this email already exists"})
    if errors:
        raise Conflict(
            "; ".join(e["message"] for e in errors), slug="account-exists", errors=errors
        )


def create_user(
    session: Session,
    username: str,
    email: str,
    password: str,
    role: Role | str = Role.student,
    *,
    full_name: str = "",
    email_verified: bool = False,
) -> User:
    """Create an account after applying the registration rules (409 when taken)."""
    try:
        data = UserCreate(username=username, email=email, password=password, full_name=full_name)
    except ValidationError as exc:
        raise _invalid_from(exc) from exc
    try:
        role = Role(role)
    except ValueError as exc:
        raise Invalid.field("role", f"must be one of {', '.join(r.value for r in Role)}") from exc
    _ensure_unique(session, data.username, data.email)
    user = User(
        username=data.username,
        email=data.email,
        password_hash=hash_password(data.password),
        role=role.value,
        full_name=data.full_name,
        email_verified=email_verified,
    )
    try:
        with session.begin_nested():  # a lost uniqueness race is a 409, not a 500
            session.add(user)
            session.flush()
    except IntegrityError as exc:
        _ensure_unique(session, data.username, data.email)
        raise Conflict("This account already exists", slug="account-exists") from exc
    return user


def register_user(session: Session, data: UserCreate) -> User:
    """Self-registration: always a student."""
    return create_user(
        session, data.username, data.email, data.password, Role.student, full_name=data.full_name
    )


def get_user(session: Session, user_id: int) -> User:
    """The user with ``user_id`` (404 when missing)."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"No user with id {user_id}")
    return user


def get_account(session: Session, user_id: int) -> User:
    """The user with ``user_id`` unless the account was deleted (404 then: its tombstone is
    kept for the audit trail and the operator's CLI, not served as an account)."""
    user = get_user(session, user_id)
    if user.deleted_at is not None:
        raise NotFound(f"No user with id {user_id}")
    return user


INT32_MAX = 2**31 - 1


def get_user_by_ref(session: Session, ref: str) -> User:
    """A user named by id, username or email (the CLI's way of pointing at accounts)."""
    ref = ref.strip()
    user: User | None = None
    if ref.isdigit() and 0 < int(ref) <= INT32_MAX:  # beyond the id column: a name at best
        user = session.get(User, int(ref))
    if user is None:
        user = session.execute(
            select(User).where(or_(col(User.username) == ref, col(User.email) == ref.lower()))
        ).scalar_one_or_none()
    if user is None:
        raise NotFound(f"No user matches {ref!r}")
    return user


USER_ORDER = SortKey("id", (col(User.id),), descending=False)


def users_page(
    session: Session,
    *,
    role: Role | str | None = None,
    search: str | None = None,
    is_active: bool | None = None,
    request: PageRequest | None = None,
) -> Page[User]:
    """One page of users ordered by id, optionally filtered (see ``services.paging``)."""
    request = request or PageRequest()
    conditions: list[Any] = []
    if role is not None:
        conditions.append(col(User.role) == Role(role).value)
    if is_active is not None:
        conditions.append(col(User.is_active) == is_active)
    if search and search.strip():
        conditions.append(
            key_contains_text(
                search,
                col(User.search_key),
                SEARCH_KEY_SEPARATOR,
                col(User.username),
                col(User.email),
            )
        )
    ids = select(col(User.id)).where(*conditions)
    plan = plan_page(session, ids, USER_ORDER, request, search=search)
    if plan.ids is None:
        return Page(plan.count, plan.count_exact)
    rows = (
        session.execute(
            select(User).where(col(User.id).in_(plan.ids)).order_by(*USER_ORDER.order_by())
        )
        .scalars()
        .all()
    )
    kept, cursor = finish_page(plan, USER_ORDER, rows, lambda user: user)
    return Page(plan.count, plan.count_exact, kept, cursor)


def list_users(
    session: Session,
    *,
    role: Role | str | None = None,
    search: str | None = None,
    is_active: bool | None = None,
    offset: int = 0,
    limit: int | None = 20,
) -> tuple[int, list[User]]:
    """``(count, page)`` by offset (``users_page``)."""
    page = users_page(
        session,
        role=role,
        search=search,
        is_active=is_active,
        request=PageRequest(offset=offset, limit=limit),
    )
    return page.count, page.results


def _lock_for_change(session: Session, user: User, touches_admins: bool) -> None:
    # Lock order is always: active admins (by id), then the target. Two admins demoting
    # each other therefore serialize instead of both passing the last-admin check.
    if touches_admins:
        session.execute(
            select(col(User.id))
            .where(col(User.role) == Role.admin.value, col(User.is_active).is_(True))
            .order_by(col(User.id))
            .with_for_update()
        ).all()
    session.refresh(user, with_for_update=True)


def lock_for_deletion(session: Session, user: User) -> None:
    """Lock ``user`` for deletion (409 when it is the last active admin)."""
    is_admin = user.role == Role.admin.value
    _lock_for_change(session, user, touches_admins=is_admin)
    if is_admin and user.is_active:
        _ensure_not_last_admin(session, user)


def _ensure_not_last_admin(session: Session, user: User) -> None:
    others = session.execute(
        select(func.count())
        .select_from(User)
        .where(
            col(User.role) == Role.admin.value,
            col(User.is_active).is_(True),
            col(User.id) != user.id,
        )
    ).scalar_one()
    if not others:
        raise Conflict(
            f"{user.username} is the last active admin; promote another admin first",
            slug="last-admin",
        )


def changed(session: Session, user: User) -> User:
    """Bump ``auth_version`` and publish the user's new auth state after the commit.

    Every change a cached answer depends on (role, activity, password, profile) ends here.
    """
    return _changed(session, user)


def _changed(session: Session, user: User) -> User:
    user.auth_version += 1
    session.add(user)
    session.flush()
    auth_state.publish_user_after_commit(session, user)
    return user


def set_role(session: Session, actor: Principal, user: User, role: Role | str) -> User:
    """Give ``user`` a new role (admins only; the last active admin keeps theirs)."""
    require_role(actor, Role.admin)
    try:
        new_role = Role(role)
    except ValueError as exc:
        raise Invalid.field("role", f"must be one of {', '.join(r.value for r in Role)}") from exc
    _lock_for_change(session, user, touches_admins=True)
    if user.role == new_role.value:
        return user
    if user.role == Role.admin.value and user.is_active:
        _ensure_not_last_admin(session, user)
    details = {"from": user.role, "to": new_role.value}
    user.role = new_role.value
    audit.record(session, actor, "user.role_changed", "user", user.id or 0, details)
    return _changed(session, user)


def set_active(session: Session, actor: Principal, user: User, active: bool) -> User:
    """(De)activate ``user``; deactivation ends every login (admins only, not the last admin)."""
    require_role(actor, Role.admin)
    _lock_for_change(session, user, touches_admins=not active)
    if user.is_active == active:
        return user
    if not active:
        if user.role == Role.admin.value:
            _ensure_not_last_admin(session, user)
        auth.revoke_user_sessions(session, user.id, "deactivated")  # type: ignore[arg-type]
    user.is_active = active
    action = "user.activated" if active else "user.deactivated"
    audit.record(session, actor, action, "user", user.id or 0)
    return _changed(session, user)


def set_password(session: Session, actor: Principal, user: User, password: str) -> User:
    """An admin or operator sets a new password (registration rules); every login ends."""
    if not (actor.is_admin or actor.id == user.id):
        raise NotFound(f"No user with id {user.id}")
    return apply_new_password(session, actor, user, password, "user.password_set")


def apply_new_password(
    session: Session,
    actor: Principal,
    user: User,
    password: str,
    action: str,
    *,
    keep_session: str | None = None,
) -> User:
    """The one way a password changes: check the rules, store the hash, end every login
    (but ``keep_session``), spend outstanding reset links and leave an audit record."""
    problem = password_problem(password, user.username)
    if problem:
        raise Invalid.field("password", problem)
    _lock_for_change(session, user, touches_admins=False)
    user.password_hash = hash_password(password)
    assert user.id is not None
    auth.revoke_user_sessions(session, user.id, "password-changed", keep=keep_session)
    account_tokens.spend_all(session, user.id, TokenPurpose.password_reset)
    audit.record(session, actor, action, "user", user.id)
    return _changed(session, user)


def role_of(user: User) -> Role:
    """The user's role as a ``Role``."""
    return Role(user.role)


def update_user(session: Session, actor: Principal, user_id: int, data: UserUpdate) -> User:
    """Apply an admin's ``{role?, is_active?}`` change (``PATCH /users/{id}/``)."""
    require_role(actor, Role.admin)
    user = get_account(session, user_id)
    if data.role is not None:
        set_role(session, actor, user, data.role)
    if data.is_active is not None:
        set_active(session, actor, user, data.is_active)
    return user
