"""``eduflow admin waitlist``: a course's line via ``services.waitlist``, acting as an admin."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from eduflow.choices import WaitlistStatus

if TYPE_CHECKING:
    from eduflow.models.waitlist import WaitlistEntryPublic

app = typer.Typer(no_args_is_help=True, help="Inspect and move the waitlists of full courses.")

ENTRY_COLUMNS = ["id", "course", "student", "status", "position", "created_at", "offer_expires_at"]
COURSE_OPT = typer.Option(..., "--course", min=1, max=2**31 - 1, help="The course id.")
JSON_OPT = typer.Option(False, "--json", help="Print JSON instead of a table.")


def entry_view(entry: WaitlistEntryPublic) -> dict[str, Any]:
    """The entry representation (same keys as ``GET /api/v1/waitlist/{id}/``)."""
    return entry.model_dump()


@app.command("list")
def list_(
    course: int = COURSE_OPT,
    status: WaitlistStatus | None = typer.Option(
        None, case_sensitive=False, help="Only this status."
    ),
    limit: int = typer.Option(100, min=1, max=100_000, help="Show at most this many."),
    as_json: bool = JSON_OPT,
) -> None:
    """List a course's waitlist in join order: position, status and offer deadline."""
    from eduflow.cli.output import print_json, print_table, show_more
    from eduflow.db import session_scope
    from eduflow.services import courses, waitlist
    from eduflow.services.permissions import OPERATOR

    with session_scope() as session:
        courses.get_visible_course(session, OPERATOR, course)  # 404 for an unknown course
        count, rows = waitlist.list_waitlist(
            session, OPERATOR, course_id=course, status=status, limit=limit
        )
    results = [entry_view(e) for e in rows]
    if as_json:
        print_json({"count": count, "results": results})
        return
    print_table(results, ENTRY_COLUMNS, title=f"Waitlist of course {course}")
    show_more(len(results), count)


@app.command("promote")
def promote(course: int = COURSE_OPT, as_json: bool = JSON_OPT) -> None:
    """Offer the course's free seats to the next students in line now."""
    from eduflow.cli.output import print_json, success
    from eduflow.db import session_scope
    from eduflow.services import waitlist
    from eduflow.services.permissions import OPERATOR

    with session_scope() as session:
        offered = waitlist.promote(session, OPERATOR, course)
    if as_json:
        print_json({"course": course, "offered": offered})
    elif offered:
        success(f"offered {len(offered)} seat(s) of course {course}: entries {offered}")
    else:
        success(f"no free seat to offer in course {course}, or nobody waiting")
