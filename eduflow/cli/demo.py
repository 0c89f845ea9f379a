"""``eduflow demo``: fill a database with realistic demo data."""

from __future__ import annotations

import time

import typer

app = typer.Typer(no_args_is_help=True, help="Demo data for trying EduFlow out.")


@app.command("seed")
def seed(
    courses: int = typer.Option(1000, min=0, help="Courses to create."),
    students: int = typer.Option(10_000, min=0, help="Student accounts to create."),
    instructors: int | None = typer.Option(
        None, min=0, help="Instructor accounts (default: one per 20 courses)."
    ),
    lessons_per_course: int = typer.Option(8, min=0, help="Lessons in every course."),
    enrollments: int = typer.Option(
        50_000, min=0, help="Enrollments (fewer when capacities cannot hold them)."
    ),
    seed: int = typer.Option(42, help="Random seed: the same seed gives the same data."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Insert demo accounts, courses, lessons and enrollments in one transaction
    (``COPY`` on PostgreSQL; see docs/scale.md for how long large sizes take)."""
    from eduflow.cli.output import console, print_json, print_table, progress, success
    from eduflow.db import session_scope
    from eduflow.deadline import lifted
    from eduflow.services.demo import DemoSpec, seed_demo, tidy_after_seed

    spec = DemoSpec(
        courses=courses,
        students=students,
        lessons_per_course=lessons_per_course,
        enrollments=enrollments,
        seed=seed,
        instructors=instructors,
    )
    spec.validate()
    started = time.perf_counter()
    with progress("Seeding demo data", spec.total_rows) as bar:
        task = bar.task_ids[0]

        def advance(stage: str, rows: int) -> None:
            bar.update(task, advance=rows, description=f"Seeding {stage}")

        # The seed's statements and the VACUUM after it are long work (``db.long_work``);
        # so is the commit of its one transaction, which may write every new index out.
        with lifted(), session_scope() as session:
            result = seed_demo(session, spec, progress=advance)
        bar.update(task, description="Analyzing the new rows")
        tidy_after_seed()
        bar.update(task, completed=spec.total_rows)
    elapsed = time.perf_counter() - started
    summary = result.as_dict()
    summary["seconds"] = round(elapsed, 2)
    if as_json:
        print_json(summary)
        return
    success(
        f"seeded {result.admins + result.instructors + result.students} users, "
        f"{result.courses} courses ({result.published_courses} published), "
        f"{result.lessons} lessons, {result.enrollments} enrollments "
        f"({result.active_enrollments} active, {result.pending_enrollments} pending) "
        f"in {elapsed:.1f} s"
    )
    print_table(result.logins, ["role", "username"], title="Demo logins")
    console.print(f"Password for every demo account: {result.password}", highlight=False)
