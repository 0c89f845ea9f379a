"""``eduflow db``: Alembic migrations."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, help="Database migrations (Alembic).")


@app.command("upgrade")
def upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Migrate the database up to REVISION (default: head)."""
    from eduflow import schema
    from eduflow.cli.output import success
    from eduflow.db import existing_sqlite_only

    with existing_sqlite_only(False):  # the embedded SQLite file is created here
        schema.upgrade(revision)
    success(f"database at revision {schema.current_revision()}")


# ignore_unknown_options: lets "-1" (one revision back) through as the argument.
@app.command("downgrade", context_settings={"ignore_unknown_options": True})
def downgrade(revision: str = typer.Argument(..., help="Target, e.g. -1 or base.")) -> None:
    """Migrate the database down to REVISION."""
    from eduflow import schema
    from eduflow.cli.output import success

    schema.downgrade(revision)
    success(f"database at revision {schema.current_revision() or 'base'}")


@app.command("current")
def current() -> None:
    """Show the database's revision and the shipped head (``eduflow db check`` exits 1
    when they differ)."""
    from eduflow import schema
    from eduflow.cli.output import console

    cur, head = schema.current_revision(), schema.head_revision()
    state = "up to date" if cur == head else "needs `eduflow db upgrade`"
    console.print(f"current: {cur or 'base'}  head: {head}  ({state})", highlight=False)


@app.command("check")
def check() -> None:
    """Exit 0 when the database is at this version's head, else 1 with one line
    (for deploy scripts and healthchecks)."""
    from eduflow.cli import fail
    from eduflow.cli.failures import schema_line
    from eduflow.cli.output import console
    from eduflow.schema import head_revision

    problem = schema_line()
    if problem:
        raise fail(problem)
    console.print(f"the database is at head ({head_revision()})", highlight=False)


@app.command("revision")
def revision(
    message: str = typer.Option(..., "-m", "--message", help="What the revision does."),
    autogenerate: bool = typer.Option(True, help="Compare models with the database."),
) -> None:
    """Create a new migration script (developers)."""
    from alembic import command

    from eduflow.db import existing_sqlite_only
    from eduflow.schema import alembic_config

    with existing_sqlite_only(False):
        command.revision(alembic_config(), message=message, autogenerate=autogenerate)
