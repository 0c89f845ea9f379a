"""``eduflow admin``: manage accounts, courses and enrollments on the domain services."""

from __future__ import annotations

import typer

from eduflow.cli import admin_certificates, admin_courses, admin_enrollments, admin_users

app = typer.Typer(
    no_args_is_help=True,
    help="Manage users, courses, enrollments, certificates (acts as an admin, one transaction).",
)
app.add_typer(admin_users.app, name="users")
app.add_typer(admin_courses.app, name="courses")
app.add_typer(admin_enrollments.app, name="enrollments")
app.add_typer(admin_certificates.app, name="certificates")
