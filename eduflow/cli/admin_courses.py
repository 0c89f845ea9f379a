"""``eduflow admin courses``: the catalogue via ``services.courses``, acting as an admin."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from eduflow.choices import CourseOrdering

if TYPE_CHECKING:
    from eduflow.models.courses import CoursePublic

app = typer.Typer(no_args_is_help=True, help="Manage courses.")

COURSE_COLUMNS = [
    "id",
    "title",
    "owner",
    "price",
    "is_published",
    "capacity",
    "seats_taken",
    "waitlist_count",
    "lessons_count",
    "created_at",
]
COURSE_ID = typer.Argument(..., metavar="ID", min=1, max=2**31 - 1, help="Course id.")
JSON_OPT = typer.Option(False, "--json", help="Print JSON instead of a table.")


def course_view(course: CoursePublic) -> dict[str, Any]:
    """The course representation (same keys as ``GET /api/v1/courses/{id}/``)."""
    return course.model_dump()


def _show(course: CoursePublic, as_json: bool) -> None:
    from eduflow.cli.output import emit

    emit(course_view(course), as_json)


@app.command("list")
def list_(
    owner: str | None = typer.Option(None, help="Owner's id, username or email."),
    published: bool = typer.Option(False, "--published", help="Only published courses."),
    draft: bool = typer.Option(False, "--draft", help="Only drafts."),
    search: str | None = typer.Option(None, help="Part of the title or description."),
    ordering: CourseOrdering = typer.Option(
        "-created_at", help="Sort order; a leading '-' reverses."
    ),
    limit: int = typer.Option(50, min=1, max=100_000, help="Show at most this many."),
    as_json: bool = JSON_OPT,
) -> None:
    """List courses (drafts included), newest first."""
    from eduflow.cli.failures import one_of
    from eduflow.cli.output import print_json, print_table, show_more
    from eduflow.db import session_scope
    from eduflow.services import courses, users
    from eduflow.services.permissions import OPERATOR

    with session_scope() as session:
        owner_name = users.get_user_by_ref(session, owner).username if owner else None
        filters = courses.CourseFilters(
            search=search,
            ordering=ordering,
            is_published=one_of(published, draft, "--published", "--draft"),
            owner=owner_name,
        )
        count, rows = courses.list_courses(session, OPERATOR, filters, limit=limit)
    results = [course_view(c) for c in rows]
    if as_json:
        print_json({"count": count, "results": results})
        return
    print_table(results, COURSE_COLUMNS, title="Courses")
    show_more(len(results), count)


@app.command("show")
def show(course_id: int = COURSE_ID, as_json: bool = JSON_OPT) -> None:
    """Show one course."""
    from eduflow.db import session_scope
    from eduflow.services import courses
    from eduflow.services.permissions import OPERATOR

    with session_scope() as session:
        course = courses.course_detail(session, OPERATOR, course_id)
    _show(course, as_json)


@app.command("create")
def create(
    owner: str = typer.Option(..., help="Owner (an instructor or admin): id, username or email."),
    title: str = typer.Option(..., help="3-200 characters."),
    description: str = typer.Option("", help="What the course is about."),
    price: str = typer.Option("0", help="Price, e.g. 19.90 (0 = free)."),
    capacity: int | None = typer.Option(None, help="Seats (default: unlimited)."),
    publish: bool = typer.Option(False, "--publish", help="Publish at once (default: draft)."),
    as_json: bool = JSON_OPT,
) -> None:
    """Create a course for an instructor."""
    from eduflow.cli.output import success
    from eduflow.db import session_scope
    from eduflow.services import courses, users
    from eduflow.services.permissions import OPERATOR

    data: dict[str, Any] = {
        "title": title,
        "description": description,
        "price": price,
        "capacity": capacity,
        "is_published": publish,
    }
    with session_scope() as session:
        owner_user = users.get_user_by_ref(session, owner)
        course = courses.create_course(session, OPERATOR, data, owner=owner_user)
    if as_json:
        _show(course, True)
    else:
        state = "published" if course.is_published else "draft"
        success(f"created course {course.id} {course.title!r} ({state}) for {course.owner}")


@app.command("publish")
def publish(course_id: int = COURSE_ID) -> None:
    """Publish a course: everyone sees it on their next read."""
    from eduflow.cli.output import success
    from eduflow.db import session_scope
    from eduflow.services import courses
    from eduflow.services.permissions import OPERATOR

    with session_scope() as session:
        course = courses.publish_course(session, OPERATOR, course_id)
    success(f"course {course.id} {course.title!r} is published")


@app.command("unpublish")
def unpublish(course_id: int = COURSE_ID) -> None:
    """Turn a course back into a draft (its enrollments are kept)."""
    from eduflow.cli.output import success
    from eduflow.db import session_scope
    from eduflow.services import courses
    from eduflow.services.permissions import OPERATOR

    with session_scope() as session:
        course = courses.unpublish_course(session, OPERATOR, course_id)
    success(f"course {course.id} {course.title!r} is a draft")


@app.command("transfer")
def transfer(
    course_id: int = COURSE_ID,
    to: str = typer.Option(..., "--to", help="New owner (instructor or admin): id, name, email."),
) -> None:
    """Give a course to another instructor or admin."""
    from eduflow.cli.output import success
    from eduflow.db import session_scope
    from eduflow.services import courses
    from eduflow.services.permissions import OPERATOR

    with session_scope() as session:
        course = courses.transfer_course(session, OPERATOR, course_id, to)
    success(f"course {course.id} {course.title!r} now belongs to {course.owner}")


@app.command("delete")
def delete(
    course_id: int = COURSE_ID,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete a course with its lessons and enrollments (asks first)."""
    from eduflow.cli.output import confirm_or_abort, success
    from eduflow.db import session_scope
    from eduflow.services import courses, enrollments
    from eduflow.services.permissions import OPERATOR

    if not yes:
        with session_scope() as session:
            course = courses.course_detail(session, OPERATOR, course_id)
            taken, _ = enrollments.list_enrollments(session, OPERATOR, course_id=course_id, limit=0)
        confirm_or_abort(
            f"Delete course {course.id} {course.title!r} with {course.lessons_count} lessons "
            f"and {taken} enrollments?"
        )
    with session_scope() as session:
        gone = courses.delete_course(session, OPERATOR, course_id)
    success(
        f"deleted course {gone.id} {gone.title!r} with {gone.lessons} lessons "
        f"and {gone.enrollments} enrollments"
    )
