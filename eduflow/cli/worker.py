"""``eduflow worker``: RQ workers (and the periodic scheduler)."""

from __future__ import annotations

import typer


def worker(
    queue: list[str] = typer.Option(["default"], "--queue", "-q", help="Queues to listen on."),
    burst: bool = typer.Option(False, help="Exit when the queues are empty."),
    with_scheduler: bool = typer.Option(False, help="Also run the periodic jobs."),
) -> None:
    """Run a background worker."""
    from eduflow.errors import EduFlowError

    raise EduFlowError("the worker is not available in this build yet")


def register(app: typer.Typer) -> None:
    """Attach ``worker`` to the root app."""
    app.command("worker")(worker)
