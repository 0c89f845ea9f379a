"""``eduflow admin certificates``: via ``services.certificates``, acting as an admin."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from eduflow.models.certificates import Certificate

app = typer.Typer(no_args_is_help=True, help="Inspect, issue and revoke certificates.")

CERTIFICATE_COLUMNS = ["serial", "course", "course_title", "student", "student_name", "status"]
SERIAL = typer.Argument(..., metavar="SERIAL", help="Certificate serial.")
JSON_OPT = typer.Option(False, "--json", help="Print JSON instead of a table.")


def certificate_view(certificate: Certificate, username: str | None) -> dict[str, Any]:
    """The API representation plus the revocation reason (operators see it)."""
    from eduflow.services.certificates import to_admin_view

    return to_admin_view(certificate, username).model_dump()


@app.command("list")
def list_(
    course: int | None = typer.Option(None, min=1, max=2**31 - 1, help="Only this course id."),
    student: str | None = typer.Option(None, help="Only this student: id, username or email."),
    limit: int = typer.Option(50, min=1, max=100_000, help="Show at most this many."),
    as_json: bool = JSON_OPT,
) -> None:
    """List certificates, newest first."""
    from eduflow.cli.output import print_json, print_table, show_more
    from eduflow.db import session_scope
    from eduflow.services import certificates, users
    from eduflow.services.permissions import OPERATOR

    with session_scope(read_only=True) as session:
        student_id = users.get_user_by_ref(session, student).id if student else None
        count, rows = certificates.list_certificates(
            session, OPERATOR, course_id=course, student_id=student_id, limit=limit
        )
        results = [certificate_view(c, username) for c, username in rows]
    if as_json:
        print_json({"count": count, "results": results})
        return
    print_table(results, CERTIFICATE_COLUMNS, title="Certificates")
    show_more(len(results), count)


@app.command("show")
def show(serial: str = SERIAL, as_json: bool = JSON_OPT) -> None:
    """Show one certificate."""
    from eduflow.cli.output import emit
    from eduflow.db import session_scope
    from eduflow.services import certificates
    from eduflow.services.permissions import OPERATOR

    with session_scope(read_only=True) as session:
        certificate, username = certificates.get_certificate(session, OPERATOR, serial.strip())
        view = certificate_view(certificate, username)
    emit(view, as_json)


@app.command("issue")
def issue(
    enrollment_id: int = typer.Argument(
        ..., metavar="ENROLLMENT", min=1, max=2**31 - 1, help="Enrollment id."
    ),
    as_json: bool = JSON_OPT,
) -> None:
    """Issue the certificate of a completed enrollment (prints the existing one if issued)."""
    from eduflow.cli.output import emit, success
    from eduflow.db import session_scope
    from eduflow.services import certificates

    with session_scope() as session:
        issued = certificates.issue_certificate(session, enrollment_id)
        view = certificate_view(issued.certificate, issued.username)
    if as_json:
        emit({**view, "created": issued.created}, True)
        return
    verb = "issued" if issued.created else "already issued"
    success(
        f"{verb} certificate {view['serial']} to {view['student_name']!r}: {view['verify_url']}"
    )


@app.command("revoke")
def revoke(
    serial: str = SERIAL,
    reason: str = typer.Option(..., "--reason", help="Why it is withdrawn (3-500 characters)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    as_json: bool = JSON_OPT,
) -> None:
    """Revoke a certificate: ``revoked`` everywhere at once; recorded in the audit trail."""
    from eduflow.cli.output import confirm_or_abort, emit, success
    from eduflow.db import session_scope
    from eduflow.services import certificates
    from eduflow.services.permissions import OPERATOR

    serial = serial.strip()
    text = certificates.clean_reason(reason)
    with session_scope(read_only=True) as session:
        certificate, _ = certificates.get_certificate(session, OPERATOR, serial)
        question = (
            f"Revoke certificate {serial} of {certificate.student_name!r} "
            f"for {certificate.course_title!r}?"
        )
    confirm_or_abort(question, assume_yes=yes)
    with session_scope() as session:
        certificate, username = certificates.revoke_certificate(session, OPERATOR, serial, text)
        view = certificate_view(certificate, username)
    if as_json:
        emit(view, True)
    else:
        success(f"revoked certificate {serial}")
