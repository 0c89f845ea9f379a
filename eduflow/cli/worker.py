"""``eduflow worker`` and ``eduflow scheduler``: RQ workers and the periodic jobs."""

from __future__ import annotations

import typer


def worker(
    queue: list[str] = typer.Option(["default"], "--queue", "-q", help="Queues to listen on."),
    burst: bool = typer.Option(False, help="Exit when the queues are empty."),
    with_scheduler: bool = typer.Option(
        False, help="Also enqueue the periodic jobs (expiry, daily report)."
    ),
    concurrency: int = typer.Option(
        1, "--concurrency", "-c", min=1, max=64, help="Worker processes."
    ),
) -> None:
    """Run background workers (needs EDUFLOW_REDIS_URL); SIGTERM finishes the current job."""
    from eduflow.jobs.worker import run_worker

    run_worker(
        [q.strip() for q in queue if q.strip()] or ["default"],
        burst=burst,
        with_scheduler=with_scheduler,
        concurrency=concurrency,
    )


def scheduler() -> None:
    """Enqueue the periodic jobs on schedule (each slot once, however many schedulers run)."""
    from eduflow.jobs.worker import run_standalone_scheduler

    run_standalone_scheduler()


def register(app: typer.Typer) -> None:
    """Attach ``worker`` and ``scheduler`` to the root app."""
    app.command("worker")(worker)
    app.command("scheduler")(scheduler)
