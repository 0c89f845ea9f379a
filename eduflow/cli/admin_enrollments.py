"""``eduflow admin enrollments``: via ``services.enrollments``, acting as an admin."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from eduflow.choices import EnrollmentStatus

if TYPE_CHECKING:
    from eduflow.models.enrollments import EnrollmentPublic

app = typer.Typer(no_args_is_help=True, help="Manage enrollments.")

ENROLLMENT_COLUMNS = [
    "id",
    "course",
    "course_title",
    "student",
    "status",
    "created_at",
    "confirmed_at",
]
ENROLLMENT_ID = typer.Argument(..., metavar="ID", min=1, max=2**31 - 1, help="Enrollment id.")
JSON_OPT = typer.Option(False, "--json", help="Print JSON instead of a table.")


def enrollment_view(enrollment: EnrollmentPublic) -> dict[str, Any]:
    """The enrollment representation (same keys as ``GET /api/v1/enrollments/{id}/``)."""
    return enrollment.model_dump()


@app.command("list")
def list_(
    course: int | None = typer.Option(None, min=1, max=2**31 - 1, help="Only this course id."),
    student: str | None = typer.Option(None, help="Only this student: id, username or email."),
    status: EnrollmentStatus | None = typer.Option(
        None, case_sensitive=False, help="Only this status."
    ),
    limit: int = typer.Option(50, min=1, max=100_000, help="Show at most this many."),
    as_json: bool = JSON_OPT,
) -> None:
    """List enrollments, newest first."""
    from eduflow.cli.output import print_json, print_table, show_more
    from eduflow.db import session_scope
    from eduflow.services import enrollments, users
    from eduflow.services.permissions import OPERATOR

    with session_scope() as session:
        student_id = users.get_user_by_ref(session, student).id if student else None
        count, rows = enrollments.list_enrollments(
            session, OPERATOR, course_id=course, student_id=student_id, status=status, limit=limit
        )
    results = [enrollment_view(e) for e in rows]
    if as_json:
        print_json({"count": count, "results": results})
        return
    print_table(results, ENROLLMENT_COLUMNS, title="Enrollments")
    show_more(len(results), count)


@app.command("show")
def show(enrollment_id: int = ENROLLMENT_ID, as_json: bool = JSON_OPT) -> None:
    """Show one enrollment."""
    from eduflow.cli.output import emit
    from eduflow.db import session_scope
    from eduflow.services import enrollments
    from eduflow.services.permissions import OPERATOR

    with session_scope() as session:
        enrollment = enrollments.get_enrollment(session, OPERATOR, enrollment_id)
    emit(enrollment_view(enrollment), as_json)


@app.command("confirm")
def confirm(enrollment_id: int = ENROLLMENT_ID, as_json: bool = JSON_OPT) -> None:
    """Confirm a pending enrollment (pending -> active), exactly as over HTTP."""
    from eduflow.cli.output import emit, success
    from eduflow.db import session_scope
    from eduflow.services import enrollments
    from eduflow.services.permissions import OPERATOR

    with session_scope() as session:
        enrollment = enrollments.confirm_enrollment(session, OPERATOR, enrollment_id)
    if as_json:
        emit(enrollment_view(enrollment), True)
    else:
        success(
            f"enrollment {enrollment.id} of {enrollment.student} in course {enrollment.course} "
            f"is {enrollment.status.value}"
        )


@app.command("cancel")
def cancel(
    enrollment_id: int = ENROLLMENT_ID,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Cancel an enrollment and free its seat (asks first)."""
    from eduflow.cli.output import confirm_or_abort, success
    from eduflow.db import session_scope
    from eduflow.services import enrollments
    from eduflow.services.permissions import OPERATOR

    with session_scope() as session:
        enrollment = enrollments.get_enrollment(session, OPERATOR, enrollment_id)
    if not yes:
        confirm_or_abort(
            f"Cancel enrollment {enrollment.id} of {enrollment.student} in course "
            f"{enrollment.course} {enrollment.course_title!r} ({enrollment.status.value})?"
        )
    with session_scope() as session:
        enrollments.cancel_enrollment(session, OPERATOR, enrollment_id)
    success(
        f"cancelled enrollment {enrollment.id} of {enrollment.student} "
        f"in course {enrollment.course}"
    )
