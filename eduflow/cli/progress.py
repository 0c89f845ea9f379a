"""``eduflow progress``: check the learning-progress counters against their rows."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, help="Learning progress: verify and repair counters.")


@app.command("recompute")
def recompute(
    course: int | None = typer.Option(
        None, "--course", min=1, help="Only the enrollments of this course (id)."
    ),
    fix: bool = typer.Option(False, "--fix", help="Repair every difference found."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (for scripts)."),
) -> None:
    """Recompute every enrollment's progress from its rows and print each difference.

    None is expected. Exits 1 when differences were found and not repaired (``--fix``).
    """
    from eduflow.cli.output import console, print_json, print_table, progress, success
    from eduflow.db import session_scope
    from eduflow.services.courses import get_visible_course
    from eduflow.services.permissions import OPERATOR
    from eduflow.services.progress_recompute import enrollments_to_check
    from eduflow.services.progress_recompute import recompute as run

    with session_scope() as session:
        if course is not None:
            get_visible_course(session, OPERATOR, course)  # 404 -> one line, exit 1
        total = enrollments_to_check(session, course)
        with progress("Recomputing progress", total) as bar:
            task = bar.task_ids[0]
            result = run(session, course_id=course, fix=fix, advance=lambda n: bar.advance(task, n))
    differences = [d.as_dict() for d in result.differences]
    if as_json:
        print_json({"checked": result.checked, "differences": differences, "fixed": result.fixed})
    elif differences:
        print_table(differences, ["enrollment", "course", "field", "stored", "computed"])
        verb = "repaired" if fix else "found (rerun with --fix to repair)"
        console.print(
            f"{len(differences)} difference(s) in {result.checked} enrollments {verb}",
            highlight=False,
        )
    else:
        success(f"{result.checked} enrollments checked: every counter matches its rows")
    if differences and not fix:
        raise typer.Exit(1)
