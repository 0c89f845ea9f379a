"""``eduflow admin``: manage accounts, courses and enrollments on the domain services."""

from __future__ import annotations

import typer

from eduflow.cli import (
    admin_audit,
    admin_certificates,
    admin_courses,
    admin_enrollments,
    admin_users,
    admin_waitlist,
)

app = typer.Typer(
    no_args_is_help=True,
    help="Manage users, courses, enrollments, certificates; read the audit trail (as an admin).",
)
app.add_typer(admin_users.app, name="users")
app.add_typer(admin_courses.app, name="courses")
app.add_typer(admin_enrollments.app, name="enrollments")
app.add_typer(admin_waitlist.app, name="waitlist")
app.add_typer(admin_certificates.app, name="certificates")
app.add_typer(admin_audit.app, name="audit")
