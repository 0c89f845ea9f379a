"""``eduflow admin users``: accounts, roles, activity and passwords via ``services.users``."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import typer

from eduflow.choices import Role

if TYPE_CHECKING:
    from eduflow.models.users import User

app = typer.Typer(no_args_is_help=True, help="Manage user accounts.")

USER_COLUMNS = ["id", "username", "full_name", "email", "role", "is_active", "date_joined"]
USER_ARG = typer.Argument(..., metavar="USER", help="User id, username or email.")
JSON_OPT = typer.Option(False, "--json", help="Print JSON instead of a table.")
PASSWORD_STDIN_OPT = typer.Option(
    False,
    "--password-stdin",
    help="Read the password from the first line of standard input (needed without a "
    "terminal: the hidden prompt never reads a pipe).",
)


def user_view(user: User) -> dict[str, Any]:
    """The admin representation of an account (same keys as ``GET /api/v1/users/{id}/``)."""
    from eduflow.models.users import UserAdminView

    return UserAdminView.model_validate(user).model_dump()


def read_password(password_stdin: bool) -> str:
    """A new password from stdin (``--password-stdin``) or a hidden prompt asked twice.

    Without a terminal to prompt on, one line says to use ``--password-stdin`` (exit 2):
    the password is never read, echoed, from a pipe behind the operator's back.
    """
    import getpass
    import warnings

    from eduflow.cli import fail
    from eduflow.cli.failures import USAGE_EXIT

    if password_stdin:
        line = sys.stdin.readline()
        password = line.removesuffix("\n").removesuffix("\r")
        if not password:
            raise fail("no password on standard input")
        return password
    no_terminal = fail(
        "no terminal to ask for the password on; pipe it in with --password-stdin", USAGE_EXIT
    )
    if not _can_prompt_hidden():
        raise no_terminal
    try:
        with warnings.catch_warnings():
            # getpass warns (and reads the pipe, echoed) when it finds no terminal after all.
            warnings.simplefilter("error", getpass.GetPassWarning)
            value = typer.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
    except getpass.GetPassWarning:
        raise no_terminal from None
    except typer.Abort:
        raise fail("no password given (use a terminal or --password-stdin)") from None
    return str(value)


def _can_prompt_hidden() -> bool:
    """False when the hidden prompt is Click's own (getpass) and there is no terminal for
    it: getpass would warn and read standard input, echoed."""
    import os

    from typer._click import termui

    if getattr(termui.hidden_prompt_func, "__module__", None) != termui.__name__:
        return True  # a prompt that reads elsewhere (e.g. a test runner's input)
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return False
    os.close(fd)
    return True


def _show(user: User, as_json: bool) -> None:
    from eduflow.cli.output import emit

    emit(user_view(user), as_json)


@app.command("create")
def create(
    username: str = typer.Option(..., help="3-150 letters, digits, '_' or '.'."),
    email: str = typer.Option(..., help="Unique email address."),
    full_name: str = typer.Option("", help="The person's name (up to 150 characters)."),
    role: Role = typer.Option(Role.student, case_sensitive=False, help="The account's role."),
    password_stdin: bool = PASSWORD_STDIN_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Create an account (the password is prompted for, hidden, twice).

    The operator vouches for the address, so it counts as verified.
    """
    from eduflow.cli.output import success
    from eduflow.db import session_scope
    from eduflow.services import users

    password = read_password(password_stdin)
    with session_scope() as session:
        user = users.create_user(
            session, username, email, password, role, full_name=full_name, email_verified=True
        )
    if as_json:
        _show(user, True)
    else:
        success(f"created {user.role} {user.username} (id {user.id})")


@app.command("list")
def list_(
    role: Role | None = typer.Option(None, case_sensitive=False, help="Only this role."),
    search: str | None = typer.Option(None, help="Part of the username or email."),
    active: bool = typer.Option(False, "--active", help="Only active accounts."),
    inactive: bool = typer.Option(False, "--inactive", help="Only deactivated accounts."),
    limit: int = typer.Option(50, min=1, max=100_000, help="Show at most this many."),
    as_json: bool = JSON_OPT,
) -> None:
    """List accounts, oldest first."""
    from eduflow.cli.failures import one_of
    from eduflow.cli.output import print_json, print_table, show_more
    from eduflow.db import session_scope
    from eduflow.services import users

    is_active = one_of(active, inactive, "--active", "--inactive")
    with session_scope() as session:
        count, rows = users.list_users(
            session, role=role, search=search, is_active=is_active, limit=limit
        )
        results = [user_view(u) for u in rows]
    if as_json:
        print_json({"count": count, "results": results})
        return
    print_table(results, USER_COLUMNS, title="Users")
    show_more(len(results), count)


@app.command("show")
def show(user: str = USER_ARG, as_json: bool = JSON_OPT) -> None:
    """Show one account."""
    from eduflow.db import session_scope
    from eduflow.services import users

    with session_scope() as session:
        found = users.get_user_by_ref(session, user)
    _show(found, as_json)


@app.command("set-role")
def set_role(
    user: str = USER_ARG,
    role: Role = typer.Argument(..., case_sensitive=False, help="The new role."),
) -> None:
    """Change a user's role; it applies from the user's next API request."""
    from eduflow.cli.output import success
    from eduflow.db import session_scope
    from eduflow.services import users
    from eduflow.services.permissions import OPERATOR

    with session_scope() as session:
        found = users.set_role(session, OPERATOR, users.get_user_by_ref(session, user), role)
    success(f"{found.username} is now {found.role}")


def _set_active(user: str, active: bool) -> None:
    from eduflow.cli.output import success
    from eduflow.db import session_scope
    from eduflow.services import users
    from eduflow.services.permissions import OPERATOR

    with session_scope() as session:
        found = users.set_active(session, OPERATOR, users.get_user_by_ref(session, user), active)
    success(f"{found.username} is {'active' if found.is_active else 'deactivated'}")


@app.command("activate")
def activate(user: str = USER_ARG) -> None:
    """Let a deactivated user log in again."""
    _set_active(user, True)


@app.command("deactivate")
def deactivate(user: str = USER_ARG) -> None:
    """Block a user: every login ends on its next API request."""
    _set_active(user, False)


@app.command("set-password")
def set_password(user: str = USER_ARG, password_stdin: bool = PASSWORD_STDIN_OPT) -> None:
    """Set a new password (prompted twice, hidden); the user's logins end."""
    from eduflow.cli.output import success
    from eduflow.db import session_scope
    from eduflow.services import users
    from eduflow.services.permissions import OPERATOR

    with session_scope() as session:
        username = users.get_user_by_ref(session, user).username  # fail before prompting
    password = read_password(password_stdin)
    with session_scope() as session:
        users.set_password(session, OPERATOR, users.get_user_by_ref(session, user), password)
    success(f"password of {username} changed; their logins have ended")


@app.command("delete")
def delete(
    user: str = USER_ARG,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete an account: logins end, name and email are erased, enrollments cancelled."""
    from eduflow.cli import fail
    from eduflow.cli.output import confirm_or_abort, success
    from eduflow.db import session_scope
    from eduflow.services import accounts, users
    from eduflow.services.permissions import OPERATOR

    with session_scope(read_only=True) as session:
        found = users.get_user_by_ref(session, user)
        user_id, username, deleted = found.id or 0, found.username, found.deleted_at is not None
    if deleted:
        raise fail(f"user {user_id} is already deleted")
    confirm_or_abort(f"Delete the account {username} (id {user_id}) for good?", yes)
    with session_scope() as session:
        accounts.delete_account(session, OPERATOR, user_id)
    success(f"account {user_id} deleted; its name and email are erased")
