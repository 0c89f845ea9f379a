"""The ``eduflow`` command: a root Typer app whose sub-commands import heavy modules lazily."""

from __future__ import annotations

import sys
from typing import Any

import typer
from typer._click import ClickException, Context  # Typer vendors Click
from typer._click.exceptions import NoArgsIsHelpError, UsageError
from typer.core import TyperGroup

from eduflow import __version__
from eduflow.errors import EduFlowError


def fail(message: str, exit_code: int = 1) -> typer.Exit:
    """Print one red error line on stderr and return the Exit to raise."""
    from rich.markup import escape

    from eduflow.cli.output import err_console

    err_console.print(f"[bold red]Error:[/] {escape(message)}", markup=True, highlight=False)
    return typer.Exit(exit_code)


class EduFlowGroup(TyperGroup):
    """The one place failures are reported: usage errors (exit 2), EduFlowError, a
    database that is missing, unmigrated or unreachable, and any surprise (unless
    --debug) each become one line on stderr. Commands run with SQLite files never
    created behind the operator's back (``db.existing_sqlite_only``)."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: Context | None = None,
        **extra: Any,
    ) -> Context:
        """Parse the root's own options; a usage error is one line."""
        try:
            return super().make_context(info_name, args, parent, **extra)
        except NoArgsIsHelpError:
            raise
        except UsageError as exc:
            raise _usage(exc) from exc

    def invoke(self, ctx: Context) -> Any:
        """Run the command, translating failures."""
        from eduflow.db import existing_sqlite_only

        try:
            with existing_sqlite_only():
                return super().invoke(ctx)
        except NoArgsIsHelpError:
            raise
        except UsageError as exc:
            raise _usage(exc) from exc
        except EduFlowError as exc:
            raise fail(_database_problem(exc) or exc.detail, exc.exit_code) from exc
        except (ClickException, typer.Exit, typer.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            raise fail("interrupted", 130) from None
        except Exception as exc:
            if ctx.find_root().params.get("debug"):
                raise
            problem = _database_problem(exc)
            if problem:
                raise fail(problem) from exc
            from eduflow.db import is_transient_conflict

            if is_transient_conflict(exc):
                raise fail(
                    "a concurrent change got in the way; nothing was changed, retry"
                ) from exc
            # One line, never the SQL or a traceback: --debug shows the whole story.
            lines = str(exc).strip().splitlines()
            summary = lines[0] if lines else ""
            raise fail(
                f"unexpected error: {type(exc).__name__}: {summary} (rerun with --debug)"
            ) from exc


def _usage(exc: UsageError) -> typer.Exit:
    from eduflow.cli.failures import USAGE_EXIT, usage_line

    return fail(usage_line(exc), USAGE_EXIT)


def _database_problem(exc: BaseException) -> str | None:
    from eduflow.cli.failures import database_problem

    return database_problem(exc)


app = typer.Typer(
    name="eduflow",
    cls=EduFlowGroup,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="EduFlow: API server, background worker and operator tools.",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"eduflow {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks of unexpected errors."),
) -> None:
    """EduFlow command line."""


def _register() -> None:
    from eduflow.cli import admin, cache, db, demo, jobs, progress, report, serve, worker

    serve.register(app)
    worker.register(app)
    app.add_typer(db.app, name="db")
    app.add_typer(admin.app, name="admin")
    app.add_typer(jobs.app, name="jobs")
    app.add_typer(cache.app, name="cache")
    app.add_typer(report.app, name="report")
    app.add_typer(progress.app, name="progress")
    app.add_typer(demo.app, name="demo")


_register()


def main() -> None:
    """Console-script entry point."""
    app(prog_name="eduflow")
    sys.exit(0)
