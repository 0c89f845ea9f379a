"""``eduflow jobs``: inspect, replay and purge background jobs; relay the outbox by hand."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from eduflow.choices import JobStatus, PurgeableJobStatus
from eduflow.cli.failures import check_day, check_duration

if TYPE_CHECKING:
    import redis

app = typer.Typer(no_args_is_help=True, help="Inspect, replay and purge background jobs.")

LIST_COLUMNS = ["id", "function", "status", "queue", "tries", "enqueued_at", "ended_at", "error"]
JSON_HELP = "Print JSON (for scripts)."


def _client() -> redis.Redis:
    from eduflow.jobs.worker import worker_connection

    return worker_connection()


@app.command("list")
def list_(
    status: JobStatus | None = typer.Option(
        None, "--status", "-s", case_sensitive=False, help="Only this status (default: all)."
    ),
    queue: str | None = typer.Option(None, "--queue", "-q", help="Only this queue."),
    limit: int = typer.Option(50, "--limit", "-n", min=1, max=10_000, help="At most this many."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """List jobs by status."""
    from eduflow.cli.output import emit
    from eduflow.jobs.registry import list_jobs

    emit(list_jobs(_client(), status=status, queue=queue, limit=limit), as_json, LIST_COLUMNS)


@app.command("show")
def show(
    job_id: str = typer.Argument(..., help="The job id (e.g. outbox-42)."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Show one job: args, status, tries, exception and timestamps."""
    from eduflow.cli.output import emit
    from eduflow.jobs.registry import fetch_job, job_to_dict

    emit(job_to_dict(fetch_job(_client(), job_id), full=True), as_json)


@app.command("replay")
def replay(
    job_ids: list[str] = typer.Argument(None, help="Failed job ids to requeue."),
    all_: bool = typer.Option(False, "--all", help="Every failed job that passes the filters."),
    match: str | None = typer.Option(None, "--match", help="Exception text contains this."),
    function: str | None = typer.Option(None, "--function", help="Only this job function."),
    since: str | None = typer.Option(
        None, "--since", callback=check_duration, help="Failed within, e.g. 30m, 2h, 7d."
    ),
    queue: str | None = typer.Option(None, "--queue", "-q", help="Only this queue."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be requeued."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Requeue failed jobs (ids, or --all with filters); a missing job is reported, not fatal."""
    from eduflow.cli import fail
    from eduflow.cli.output import console, print_json, print_table, track
    from eduflow.jobs import registry

    if bool(job_ids) == all_:
        raise fail("give job ids or --all (not both)", 2)
    client = _client()
    if all_:
        ids = registry.replay_candidates(
            client, queue=queue, match=match, function=function, since=since
        )
    else:
        if match or function or since:
            raise fail("--match, --function and --since go with --all", 2)
        ids = list(dict.fromkeys(job_ids))
    outcomes = list(track(registry.replay(client, ids, dry_run), "Replaying", total=len(ids)))
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome.outcome] = counts.get(outcome.outcome, 0) + 1
    rows = [{"id": o.job_id, "outcome": o.outcome, "detail": o.detail} for o in outcomes]
    if as_json:
        print_json({"counts": counts, "jobs": rows})
    else:
        if rows:
            print_table(rows, ["id", "outcome", "detail"])
        summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "nothing to replay"
        console.print(summary, highlight=False)
    if not all_ and counts.get("requeued", 0) + counts.get("would-requeue", 0) == 0 and ids:
        raise typer.Exit(1)  # every id given by hand was bad: say so with the exit code


@app.command("purge")
def purge(
    status: PurgeableJobStatus = typer.Option(
        PurgeableJobStatus.failed, "--status", case_sensitive=False, help="The registry to empty."
    ),
    queue: str | None = typer.Option(None, "--queue", "-q", help="Only this queue."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do it (required)."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Delete every job of the failed (or finished) registry."""
    from eduflow.cli import fail
    from eduflow.cli.output import print_json, success
    from eduflow.jobs.registry import purge as purge_jobs

    if not yes:
        raise fail(f"purging deletes every {status} job; add --yes to confirm", 2)
    count = purge_jobs(_client(), status=status, queue=queue)
    if as_json:
        print_json({"status": status, "deleted": count})
    else:
        success(f"deleted {count} {status} job(s)")


@app.command("stats")
def stats(as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Per queue: queued, started, scheduled, failed, finished, workers; and the outbox backlog."""
    from eduflow.cli.output import console, print_json, print_table
    from eduflow.jobs.registry import stats as queue_stats
    from eduflow.outbox import outbox_backlog

    rows = queue_stats(_client())
    backlog = outbox_backlog()
    if as_json:
        print_json({"queues": rows, "outbox_backlog": backlog})
        return
    columns = ["queue", "queued", "started", "scheduled", "failed", "finished", "workers"]
    print_table(rows, columns)
    console.print(f"outbox backlog: {backlog}", highlight=False)


@app.command("run")
def run(
    name: str = typer.Argument(..., help="expire_abandoned_enrollments or daily_report."),
    date: str | None = typer.Option(
        None, "--date", callback=check_day, help="daily_report: the day (YYYY-MM-DD)."
    ),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Enqueue a periodic job now (through the outbox, like every job)."""
    from eduflow.cli import fail
    from eduflow.cli.failures import parse_day
    from eduflow.cli.output import print_json, success
    from eduflow.db import session_scope
    from eduflow.jobs.scheduler import periodic_jobs
    from eduflow.outbox import job_id_for, record_job

    names = [p.name for p in periodic_jobs()]
    if name not in names:
        raise fail(f"unknown periodic job {name!r}; choose one of {', '.join(names)}", 2)
    args: dict[str, Any] = {}
    if date is not None:
        if name != "daily_report":
            raise fail("--date only applies to daily_report", 2)
        args["day"] = parse_day(date).isoformat()
    with session_scope() as session:
        row = record_job(session, name, **args)
    assert row.id is not None
    job_id = job_id_for(row.id)
    if as_json:
        print_json({"job_id": job_id, "function": name, "args": args})
    else:
        success(f"enqueued {name} as {job_id}")


@app.command("relay")
def relay(as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Hand every outbox row not yet relayed to the queue (e.g. after a Redis outage)."""
    from eduflow.cli import fail
    from eduflow.cli.output import print_json, success
    from eduflow.outbox import relay_pending

    _client()  # a clear error when Redis is not configured or down
    result = relay_pending()
    data = {
        "relayed": result.relayed,
        "duplicates": result.duplicates,
        "pruned": result.pruned,
        "errors": result.errors,
    }
    if as_json:
        print_json(data)
    else:
        success(f"relayed {result.relayed} job(s) ({result.duplicates} already queued)")
    if result.errors:
        raise fail(f"{len(result.errors)} row(s) not relayed: {result.errors[0]}")
