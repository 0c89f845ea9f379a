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
    check: bool = typer.Option(
        False, "--check", help="Exit 0 if a worker of this host beats in Redis, else 1."
    ),
) -> None:
    """Run background workers (needs EDUFLOW_REDIS_URL); SIGTERM finishes the current job."""
    if check:
        _check("worker")
        return
    from eduflow.jobs.worker import run_worker

    run_worker(
        [q.strip() for q in queue if q.strip()] or ["default"],
        burst=burst,
        with_scheduler=with_scheduler,
        concurrency=concurrency,
    )


def scheduler(
    check: bool = typer.Option(
        False, "--check", help="Exit 0 if a scheduler of this host beats in Redis, else 1."
    ),
) -> None:
    """Enqueue the periodic jobs on schedule (each slot once, however many schedulers run)."""
    if check:
        _check("scheduler")
        return
    from eduflow.jobs.worker import run_standalone_scheduler

    run_standalone_scheduler()


def _check(role: str) -> None:
    """The container healthcheck: one line, exit 0 when this host's process is alive."""
    from eduflow.jobs.health import live_schedulers, live_workers
    from eduflow.jobs.worker import worker_connection

    client = worker_connection()
    alive = live_workers(client) if role == "worker" else live_schedulers(client)
    if not alive:
        typer.echo(f"no live {role} on this host (no recent heartbeat in Redis)", err=True)
        raise typer.Exit(1)
    typer.echo(f"{role} alive: {', '.join(alive)}")


def register(app: typer.Typer) -> None:
    """Attach ``worker`` and ``scheduler`` to the root app."""
    app.command("worker")(worker)
    app.command("scheduler")(scheduler)
